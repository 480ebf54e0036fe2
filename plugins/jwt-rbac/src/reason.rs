//! Why a request was denied: stable reason codes, their HTTP status and RFC 6750 error.

/// A stable reason code. The code string is part of the public contract (response bodies,
/// metric names, docs): never rename one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// No token in any source of the required provider(s).
    TokenMissing,
    /// Not a compact JWS: segment count, base64url, JSON objects, types of header fields.
    TokenMalformed,
    /// Longer than the provider's `max_token_bytes`.
    TokenTooLarge,
    /// `alg` unknown, outside the provider's list, or not the algorithm of the selected key.
    AlgNotAllowed,
    /// `alg: none`, in any letter case.
    AlgNone,
    /// The header carries key material or a key location (`jwk`, `jku`, `x5u`, `x5c`).
    HeaderKeyNotTrusted,
    /// The header has a `crit` list (no extension is understood).
    CritUnsupported,
    /// No configured key has the token's `kid` (or no key fits the algorithm).
    KidUnknown,
    /// The signature does not verify (ECDSA r or s of zero included).
    SignatureInvalid,
    /// `exp` is past (beyond the clock skew).
    TokenExpired,
    /// `nbf` is in the future (beyond the clock skew).
    TokenNotYetValid,
    /// `iat` is in the future (beyond the clock skew).
    IatInFuture,
    /// A registered claim has the wrong JSON type (`exp`/`nbf`/`iat` as strings...).
    ClaimTypeInvalid,
    /// `exp` is required and absent.
    ClaimMissing,
    /// `iss` is not the provider's issuer.
    IssuerMismatch,
    /// No `aud` value is one of the provider's audiences.
    AudienceMismatch,
    /// `exp` minus `iat` exceeds the provider's `max_lifetime_seconds`.
    LifetimeTooLong,
    /// The token's `jti` or `sid` is revoked in the configuration.
    TokenRevoked,
    /// An API key that is not one of the configured keys.
    ApiKeyInvalid,
    /// Verified, but the roles the rule asks for are not there.
    InsufficientRole,
    /// Verified, but the scopes the rule asks for are not there.
    InsufficientScope,
    /// No rule matched the request and `no_rule` is `deny`.
    NoRule,
    /// A remote-JWKS provider has no keys yet (first fetch pending or failing).
    JwksUnavailable,
    /// The client sent a header the plugin injects as trusted (identity, roles, verification
    /// status) on a host that cannot remove it before the upstream (Kong's engine): refused
    /// rather than passed on.
    SpoofedIdentityHeader,
    /// The plugin has no valid configuration or could not read the request (fails closed).
    Internal,
}

impl Reason {
    /// Every reason, for metric definition.
    pub const ALL: [Reason; 25] = [
        Reason::TokenMissing,
        Reason::TokenMalformed,
        Reason::TokenTooLarge,
        Reason::AlgNotAllowed,
        Reason::AlgNone,
        Reason::HeaderKeyNotTrusted,
        Reason::CritUnsupported,
        Reason::KidUnknown,
        Reason::SignatureInvalid,
        Reason::TokenExpired,
        Reason::TokenNotYetValid,
        Reason::IatInFuture,
        Reason::ClaimTypeInvalid,
        Reason::ClaimMissing,
        Reason::IssuerMismatch,
        Reason::AudienceMismatch,
        Reason::LifetimeTooLong,
        Reason::TokenRevoked,
        Reason::ApiKeyInvalid,
        Reason::InsufficientRole,
        Reason::InsufficientScope,
        Reason::NoRule,
        Reason::JwksUnavailable,
        Reason::SpoofedIdentityHeader,
        Reason::Internal,
    ];

    /// The stable code (`token_expired`).
    pub fn code(self) -> &'static str {
        match self {
            Reason::TokenMissing => "token_missing",
            Reason::TokenMalformed => "token_malformed",
            Reason::TokenTooLarge => "token_too_large",
            Reason::AlgNotAllowed => "alg_not_allowed",
            Reason::AlgNone => "alg_none",
            Reason::HeaderKeyNotTrusted => "header_key_not_trusted",
            Reason::CritUnsupported => "crit_unsupported",
            Reason::KidUnknown => "kid_unknown",
            Reason::SignatureInvalid => "signature_invalid",
            Reason::TokenExpired => "token_expired",
            Reason::TokenNotYetValid => "token_not_yet_valid",
            Reason::IatInFuture => "iat_in_future",
            Reason::ClaimTypeInvalid => "claim_type_invalid",
            Reason::ClaimMissing => "claim_missing",
            Reason::IssuerMismatch => "issuer_mismatch",
            Reason::AudienceMismatch => "audience_mismatch",
            Reason::LifetimeTooLong => "lifetime_too_long",
            Reason::TokenRevoked => "token_revoked",
            Reason::ApiKeyInvalid => "api_key_invalid",
            Reason::InsufficientRole => "insufficient_role",
            Reason::InsufficientScope => "insufficient_scope",
            Reason::NoRule => "no_rule",
            Reason::JwksUnavailable => "jwks_unavailable",
            Reason::SpoofedIdentityHeader => "spoofed_identity_header",
            Reason::Internal => "internal_error",
        }
    }

    /// The HTTP status of the local reply.
    pub fn status(self) -> u32 {
        match self {
            Reason::InsufficientRole | Reason::InsufficientScope | Reason::NoRule => 403,
            Reason::Internal => 500,
            Reason::JwksUnavailable => 503,
            Reason::SpoofedIdentityHeader => 400,
            _ => 401,
        }
    }

    /// The JSON body's `error` field, and the RFC 6750 `error` attribute of the challenge
    /// (left out of the challenge for a missing token, RFC 6750 section 3.1).
    pub fn error(self) -> &'static str {
        match self {
            Reason::InsufficientRole | Reason::InsufficientScope => "insufficient_scope",
            Reason::NoRule => "access_denied",
            Reason::Internal => "internal_error",
            Reason::JwksUnavailable => "temporarily_unavailable",
            Reason::SpoofedIdentityHeader => "invalid_request",
            _ => "invalid_token",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_snake_case() {
        for (i, r) in Reason::ALL.iter().enumerate() {
            let code = r.code();
            assert!(code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'));
            assert!(!Reason::ALL[i + 1..].iter().any(|o| o.code() == code));
        }
    }

    #[test]
    fn statuses() {
        assert_eq!(Reason::TokenExpired.status(), 401);
        assert_eq!(Reason::InsufficientScope.status(), 403);
        assert_eq!(Reason::NoRule.status(), 403);
        assert_eq!(Reason::TokenMissing.error(), "invalid_token");
        assert_eq!(Reason::InsufficientRole.error(), "insufficient_scope");
    }
}
