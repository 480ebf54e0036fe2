//! The issue's "must reject" list, token by token, against the pure validator (no host), plus
//! every algorithm's happy path. Tokens are minted from `tests/fixtures/jwt-rbac/keys.json`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../../../tests/fixtures/jwt-rbac/mint.rs"]
mod mint;

use jwt_rbac::config::Settings;
use jwt_rbac::reason::Reason;
use jwt_rbac::validate::Validator;
use mint::*;
use serde_json::{json, Value};

const NOW: i64 = 1_800_000_000;

fn validator_with(algorithms: &[&str], jwks: Value, extra: Value) -> Validator {
    let mut provider = json!({
        "issuer": "https://issuer.example.com",
        "audiences": ["api", "other"],
        "algorithms": algorithms,
        "jwks": jwks,
    });
    for (k, v) in extra.as_object().unwrap() {
        provider[k] = v.clone();
    }
    let config = json!({"providers": {"main": provider}});
    let settings = Settings::from_json(config.to_string().as_bytes()).unwrap();
    settings.providers[0].validator.clone()
}

fn validator(algorithms: &[&str]) -> Validator {
    validator_with(algorithms, all_jwks(), json!({}))
}

fn check(v: &Validator, token: &str) -> Result<(), Reason> {
    v.validate(token.as_bytes(), NOW, None).map(|_| ())
}

const ALL_ALGS: [&str; 11] = [
    "HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256",
    "EdDSA",
];

#[test]
fn every_algorithm_verifies() {
    let v = validator(&ALL_ALGS);
    for alg in ALL_ALGS {
        let token = sign(alg, kid_for(alg), &good_claims());
        assert_eq!(check(&v, &token), Ok(()), "{alg}");
        // Without kid: the keys fitting the algorithm are tried.
        let token = sign_with_header(alg, kid_for(alg), json!({"kid": null}), &good_claims());
        assert_eq!(check(&v, &token), Ok(()), "{alg} without kid");
    }
}

#[test]
fn bad_signature_for_every_algorithm() {
    let v = validator(&ALL_ALGS);
    for alg in ALL_ALGS {
        let token = sign(alg, kid_for(alg), &good_claims());
        let (input, sig) = token.rsplit_once('.').unwrap();
        let mut bytes =
            base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, sig).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0x01;
        let forged = format!("{input}.{}", b64(&bytes));
        assert_eq!(check(&v, &forged), Err(Reason::SignatureInvalid), "{alg}");
        // Same signature, other payload.
        let other = sign(alg, kid_for(alg), &claims_with(json!({"sub": "mallory"})));
        let spliced = format!("{}.{sig}", other.rsplit_once('.').unwrap().0);
        assert_eq!(check(&v, &spliced), Err(Reason::SignatureInvalid), "{alg}");
        // Empty signature.
        assert_eq!(
            check(&v, &format!("{input}.")),
            Err(Reason::SignatureInvalid),
            "{alg}"
        );
    }
}

#[test]
fn alg_none_in_any_case() {
    let v = validator(&["RS256"]);
    for none in ["none", "None", "NONE", "nOnE"] {
        let header = json!({"alg": none, "typ": "JWT"}).to_string();
        for sig in [&b""[..], b"x"] {
            let token = assemble(&header, &good_claims().to_string(), sig);
            assert_eq!(check(&v, &token), Err(Reason::AlgNone), "{none}");
        }
    }
}

#[test]
fn algorithm_confusion_hs256_with_the_rsa_public_key() {
    let secret = rsa_public_pem_like();
    let header = json!({"alg": "HS256", "typ": "JWT", "kid": "rsa-1"}).to_string();
    let payload = good_claims().to_string();
    let input = format!("{}.{}", b64(&header), b64(&payload));
    let token = format!("{input}.{}", b64(hmac("HS256", &secret, input.as_bytes())));
    // Provider without HS256.
    assert_eq!(
        check(&validator(&["RS256"]), &token),
        Err(Reason::AlgNotAllowed)
    );
    // Provider with HS256 too: the key named by kid is RSA, so HS256 is not its algorithm.
    let both = validator(&["RS256", "HS256"]);
    assert_eq!(check(&both, &token), Err(Reason::AlgNotAllowed));
    // Without kid: only real HMAC keys are tried, with their own secret.
    let header = json!({"alg": "HS256", "typ": "JWT"}).to_string();
    let input = format!("{}.{}", b64(&header), b64(&payload));
    let token = format!("{input}.{}", b64(hmac("HS256", &secret, input.as_bytes())));
    assert_eq!(check(&both, &token), Err(Reason::SignatureInvalid));
    // An RSA-only JWKS with HS256 allowed cannot even be configured.
    let config =
        json!({"providers": {"p": {"algorithms": ["RS256", "HS256"], "jwks": jwks(&["rsa-1"])}}});
    let err = Settings::from_json(config.to_string().as_bytes()).unwrap_err();
    assert_eq!(err.field, "providers.p.algorithms[1]");
}

#[test]
fn algorithm_outside_the_providers_list() {
    let v = validator(&["RS256"]);
    for alg in ["ES256", "PS256", "RS512", "HS256", "EdDSA"] {
        let token = sign(alg, kid_for(alg), &good_claims());
        assert_eq!(check(&v, &token), Err(Reason::AlgNotAllowed), "{alg}");
    }
    let header = json!({"alg": "XS256", "kid": "rsa-1"}).to_string();
    let token = assemble(&header, &good_claims().to_string(), b"sig");
    assert_eq!(check(&v, &token), Err(Reason::AlgNotAllowed));
    let header = json!({"alg": ["RS256"], "kid": "rsa-1"}).to_string();
    let token = assemble(&header, &good_claims().to_string(), b"sig");
    assert_eq!(check(&v, &token), Err(Reason::TokenMalformed));
}

#[test]
fn key_fixed_by_alg_in_jwk() {
    // rsa-1 pinned to RS256: a PS256 token with its kid is refused even though PS256 is allowed.
    let mut jwk = public_jwk("rsa-1");
    jwk["alg"] = json!("RS256");
    let v = validator_with(
        &["RS256", "PS256"],
        json!({"keys": [jwk, public_jwk("rsa-2")]}),
        json!({}),
    );
    let token = sign("PS256", "rsa-1", &good_claims());
    assert_eq!(check(&v, &token), Err(Reason::AlgNotAllowed));
    assert_eq!(check(&v, &sign("RS256", "rsa-1", &good_claims())), Ok(()));
}

#[test]
fn unknown_kid() {
    let v = validator(&["RS256"]);
    let token = sign_with_header("RS256", "rsa-1", json!({"kid": "nope"}), &good_claims());
    assert_eq!(check(&v, &token), Err(Reason::KidUnknown));
    // A key removed from the JWKS (rotation): its tokens are unknown.
    let only2 = validator_with(&["RS256"], jwks(&["rsa-2"]), json!({}));
    assert_eq!(
        check(&only2, &sign("RS256", "rsa-1", &good_claims())),
        Err(Reason::KidUnknown)
    );
    let token = sign_with_header("RS256", "rsa-1", json!({"kid": 7}), &good_claims());
    assert_eq!(check(&v, &token), Err(Reason::TokenMalformed));
}

#[test]
fn key_material_in_the_header_is_never_trusted() {
    let v = validator(&["RS256", "ES256"]);
    let jwk = public_jwk("rsa-1");
    for extra in [
        json!({"jwk": jwk}),
        json!({"jku": "https://attacker.example/jwks.json"}),
        json!({"x5u": "https://attacker.example/cert.pem"}),
        json!({"x5c": ["MIIB..."]}),
    ] {
        let token = sign_with_header("RS256", "rsa-1", extra.clone(), &good_claims());
        assert_eq!(
            check(&v, &token),
            Err(Reason::HeaderKeyNotTrusted),
            "{extra}"
        );
    }
}

#[test]
fn crit_not_understood() {
    let v = validator(&["RS256"]);
    for crit in [json!(["exp"]), json!(["b64"]), json!([]), json!("x")] {
        let token = sign_with_header(
            "RS256",
            "rsa-1",
            json!({"crit": crit, "b64": false}),
            &good_claims(),
        );
        assert_eq!(check(&v, &token), Err(Reason::CritUnsupported), "{crit}");
    }
}

#[test]
fn time_claims_with_skew() {
    let v = validator(&["ES256"]);
    let t = |c: Value| check(&v, &sign("ES256", "ec-1", &claims_with(c)));
    assert_eq!(t(json!({"exp": NOW - 61})), Err(Reason::TokenExpired));
    assert_eq!(t(json!({"exp": NOW - 60})), Err(Reason::TokenExpired));
    assert_eq!(t(json!({"exp": NOW - 59})), Ok(()), "within skew");
    assert_eq!(t(json!({"exp": (NOW - 30) as f64 + 0.5})), Ok(()));
    assert_eq!(t(json!({"nbf": NOW + 61})), Err(Reason::TokenNotYetValid));
    assert_eq!(t(json!({"nbf": NOW + 60})), Ok(()));
    assert_eq!(t(json!({"iat": NOW + 61})), Err(Reason::IatInFuture));
    assert_eq!(t(json!({"iat": NOW + 59})), Ok(()));
    assert_eq!(t(json!({"exp": null})), Err(Reason::ClaimMissing));
    let lax = validator_with(
        &["ES256"],
        all_jwks(),
        json!({"require_exp": false, "clock_skew_seconds": 0}),
    );
    assert_eq!(
        check(
            &lax,
            &sign("ES256", "ec-1", &claims_with(json!({"exp": null})))
        ),
        Ok(())
    );
    assert_eq!(
        check(
            &lax,
            &sign("ES256", "ec-1", &claims_with(json!({"exp": NOW})))
        ),
        Err(Reason::TokenExpired)
    );
}

#[test]
fn time_claims_as_strings_or_other_types() {
    let v = validator(&["ES256"]);
    for (name, value) in [
        ("exp", json!("4102444800")),
        ("nbf", json!("0")),
        ("iat", json!("1700000000")),
        ("exp", json!(true)),
        ("exp", json!([4102444800i64])),
        ("exp", json!(null)),
    ] {
        let mut claims = good_claims();
        claims[name] = value.clone();
        let token = sign("ES256", "ec-1", &claims);
        assert_eq!(
            check(&v, &token),
            Err(Reason::ClaimTypeInvalid),
            "{name}: {value}"
        );
    }
}

#[test]
fn issuer_and_audience() {
    let v = validator(&["EdDSA"]);
    let t = |c: Value| check(&v, &sign("EdDSA", "ed-1", &claims_with(c)));
    assert_eq!(
        t(json!({"iss": "https://evil.example.com"})),
        Err(Reason::IssuerMismatch)
    );
    assert_eq!(t(json!({"iss": null})), Err(Reason::IssuerMismatch));
    assert_eq!(t(json!({"iss": 5})), Err(Reason::ClaimTypeInvalid));
    assert_eq!(
        t(json!({"aud": "elsewhere"})),
        Err(Reason::AudienceMismatch)
    );
    assert_eq!(t(json!({"aud": ["a", "b"]})), Err(Reason::AudienceMismatch));
    assert_eq!(t(json!({"aud": null})), Err(Reason::AudienceMismatch));
    assert_eq!(t(json!({"aud": ["x", "other"]})), Ok(()));
    assert_eq!(t(json!({"aud": ["x", 1]})), Err(Reason::ClaimTypeInvalid));
}

#[test]
fn lifetime_limit() {
    let v = validator_with(
        &["HS256"],
        all_jwks(),
        json!({"max_lifetime_seconds": 3600}),
    );
    let t = |c: Value| check(&v, &sign("HS256", "hs-1", &claims_with(c)));
    assert_eq!(t(json!({"iat": NOW, "exp": NOW + 3600})), Ok(()));
    assert_eq!(
        t(json!({"iat": NOW, "exp": NOW + 3601})),
        Err(Reason::LifetimeTooLong)
    );
    assert_eq!(
        t(json!({"iat": null, "exp": NOW + 7200})),
        Err(Reason::LifetimeTooLong)
    );
}

#[test]
fn ecdsa_zero_r_or_s_cve_2022_21449() {
    #[cfg(feature = "es384")]
    let (v, cases) = (
        validator_with(&["ES256", "ES384"], jwks(&["ec-1", "ec384-1"]), json!({})),
        [("ES256", 32), ("ES384", 48)],
    );
    #[cfg(not(feature = "es384"))]
    let (v, cases) = (validator(&["ES256"]), [("ES256", 32)]);
    for (alg, size) in cases {
        let good = sign(alg, kid_for(alg), &good_claims());
        let (input, sig) = good.rsplit_once('.').unwrap();
        let sig =
            base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, sig).unwrap();
        let zero = vec![0u8; size];
        for forged in [
            [zero.clone(), zero.clone()].concat(),
            [zero.clone(), sig[size..].to_vec()].concat(),
            [sig[..size].to_vec(), zero.clone()].concat(),
        ] {
            let token = format!("{input}.{}", b64(&forged));
            assert_eq!(check(&v, &token), Err(Reason::SignatureInvalid), "{alg}");
        }
        // Wrong length (DER instead of r || s) too.
        let token = format!("{input}.{}", b64(&sig[1..]));
        assert_eq!(check(&v, &token), Err(Reason::SignatureInvalid), "{alg}");
    }
}

#[test]
fn malformed_tokens() {
    let v = validator(&["RS256"]);
    let good = sign("RS256", "rsa-1", &good_claims());
    assert_eq!(check(&v, &good), Ok(()));
    let (h, rest) = good.split_once('.').unwrap();
    let (p, s) = rest.split_once('.').unwrap();
    for bad in [
        format!("{h}.{p}"),
        format!("{h}.{p}.{s}.{s}"),
        format!("{h}={}.{p}.{s}", ""),
        format!("{h}.{p}.{s}="),
        format!("{h}.{p}.{s}=="),
        format!(
            "{h}.{}.{s}",
            p.replacen(|c: char| c.is_ascii_alphanumeric(), "+", 1)
        ),
        format!(
            "{h}.{p}.{}",
            s.replacen(|c: char| c.is_ascii_alphanumeric(), "/", 1)
        ),
        format!("{h}.{p}.{s}!"),
        format!(" {good}"),
        format!("{h}.{p}.{s}\n"),
        String::new(),
    ] {
        assert_eq!(check(&v, &bad), Err(Reason::TokenMalformed), "{bad:?}");
    }
}

#[test]
fn jwe_with_five_segments() {
    let v = validator(&["RS256"]);
    let header = b64(json!({"alg": "RSA-OAEP", "enc": "A256GCM"}).to_string());
    let jwe = format!(
        "{header}.{}.{}.{}.{}",
        b64("key"),
        b64("iv"),
        b64("ciphertext"),
        b64("tag")
    );
    assert_eq!(check(&v, &jwe), Err(Reason::TokenMalformed));
}

#[test]
fn payload_must_be_a_json_object() {
    let v = validator(&["RS256"]);
    for payload in ["[1,2]", "\"sub\"", "42", "null", "{\"a\":", "not json"] {
        let token = sign_raw(
            "RS256",
            "rsa-1",
            &json!({"alg": "RS256", "kid": "rsa-1"}).to_string(),
            payload,
        );
        assert_eq!(check(&v, &token), Err(Reason::TokenMalformed), "{payload}");
    }
}

#[test]
fn token_over_the_size_limit() {
    let v = validator(&["HS256"]);
    let big = claims_with(json!({"pad": "x".repeat(9000)}));
    let token = sign("HS256", "hs-1", &big);
    assert!(token.len() > 8192);
    assert_eq!(check(&v, &token), Err(Reason::TokenTooLarge));
    let small = validator_with(&["HS256"], all_jwks(), json!({"max_token_bytes": 100}));
    assert_eq!(
        check(&small, &sign("HS256", "hs-1", &good_claims())),
        Err(Reason::TokenTooLarge)
    );
}

#[test]
fn garbage_never_panics() {
    let v = validator(&ALL_ALGS);
    let good = sign("ES256", "ec-1", &good_claims());
    // Every prefix and single-byte corruption of a good token: an error, never a panic.
    for end in 0..good.len() {
        let _ = check(&v, &good[..end]);
    }
    let bytes = good.as_bytes();
    for i in (0..bytes.len()).step_by(3) {
        for b in [b'.', b'A', b'-', b'_', 0, 0xff, b'='] {
            let mut t = bytes.to_vec();
            t[i] = b;
            let _ = v.validate(&t, NOW, None);
        }
    }
}

#[cfg(feature = "es384")]
#[test]
fn es384_verifies_with_the_feature() {
    let v = validator_with(&["ES384"], jwks(&["ec384-1"]), json!({}));
    assert_eq!(check(&v, &sign("ES384", "ec384-1", &good_claims())), Ok(()));
}

/// The host's `verify_signature` for P-384, as BoringSSL answers it: DER signature, SPKI key.
#[cfg(not(feature = "es384"))]
struct P384Host;

#[cfg(not(feature = "es384"))]
impl jwt_rbac::verify::HostCrypto for P384Host {
    fn verify(&self, hash: &str, spki_der: &[u8], signature: &[u8], text: &[u8]) -> Option<bool> {
        use p384::ecdsa::signature::Verifier;
        use p384::pkcs8::DecodePublicKey;
        let key = p384::ecdsa::VerifyingKey::from_public_key_der(spki_der).ok()?;
        Some(
            hash == "sha384"
                && p384::ecdsa::Signature::from_der(signature)
                    .is_ok_and(|sig| key.verify(text, &sig).is_ok()),
        )
    }
}

#[cfg(not(feature = "es384"))]
#[test]
fn es384_without_the_feature_is_the_hosts_and_refused_where_there_is_none() {
    use jwt_rbac::host_crypto::check_host_only;
    let config = json!({"providers": {"p": {
        "issuer": "https://issuer.example.com", "audiences": ["api"],
        "algorithms": ["ES256", "ES384"], "jwks": jwks(&["ec-1", "ec384-1"])}}});
    let settings = Settings::from_json(config.to_string().as_bytes()).unwrap();
    // Where the host verifies, ES384 is accepted, and checked by the host only.
    assert_eq!(check_host_only(&settings, true), Ok(()));
    let v = &settings.providers[0].validator;
    let good = sign("ES384", "ec384-1", &good_claims());
    let host: &dyn jwt_rbac::verify::HostCrypto = &P384Host;
    assert!(v.validate(good.as_bytes(), NOW, Some(host)).is_ok());
    let forged = with_signature(&good, |sig| sig[95] ^= 1);
    assert_eq!(
        v.validate(forged.as_bytes(), NOW, Some(host)).map(|_| ()),
        Err(Reason::SignatureInvalid)
    );
    // CVE-2022-21449 shapes never reach the host.
    let zeros = with_signature(&good, |sig| sig.fill(0));
    assert_eq!(
        v.validate(zeros.as_bytes(), NOW, Some(host)).map(|_| ()),
        Err(Reason::SignatureInvalid)
    );
    // No host crypto (Kong, or crypto: pure_rust): refused at load, naming the field; and
    // were it not, nothing verifies a P-384 signature in pure Rust here.
    let err = check_host_only(&settings, false).unwrap_err();
    assert_eq!(err.field, "providers.p.algorithms[1]");
    assert!(err.to_string().contains("es384"), "{err}");
    assert_eq!(
        v.validate(good.as_bytes(), NOW, None).map(|_| ()),
        Err(Reason::SignatureInvalid)
    );
    // Without ES384 among the algorithms, P-384 keys in the JWKS are fine anywhere.
    let es256_only = json!({"providers": {"p": {"algorithms": ["ES256"],
                                                "jwks": jwks(&["ec-1", "ec384-1"])}}});
    let settings = Settings::from_json(es256_only.to_string().as_bytes()).unwrap();
    assert_eq!(check_host_only(&settings, false), Ok(()));
}

/// The demo key and token of docs/jwt-rbac.md verify (and the docs do not rot).
#[test]
fn docs_example_token_verifies() {
    let docs = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/jwt-rbac.md"
    ))
    .unwrap();
    let token = docs
        .lines()
        .find_map(|l| l.strip_prefix("TOKEN="))
        .unwrap()
        .trim()
        .to_owned();
    let start = docs
        .find("```json\n{\n  \"providers\": {\n    \"demo\"")
        .unwrap()
        + "```json\n".len();
    let end = start + docs[start..].find("```").unwrap();
    let settings = Settings::from_json(&docs.as_bytes()[start..end]).unwrap();
    let verified = settings.providers[0]
        .validator
        .validate(token.as_bytes(), NOW, None)
        .unwrap();
    assert_eq!(verified.claims["sub"], "alice");
    assert_eq!(verified.claims["roles"], json!(["reader"]));
}

/// The Montgomery RSA path agrees with the `rsa` crate's bignum arithmetic on random inputs.
#[test]
fn fast_rsa_public_operation_matches_biguint_modpow() {
    use rand::Rng;
    use rsa::traits::PublicKeyParts;
    let mut rng = rand::thread_rng();
    for kid in ["rsa-1", "rsa-2"] {
        let jwk = public_jwk(kid);
        let n = base64::Engine::decode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            jwk["n"].as_str().unwrap(),
        )
        .unwrap();
        let key = rsa::RsaPublicKey::new(
            rsa::BigUint::from_bytes_be(&n),
            rsa::BigUint::from(65537u32),
        )
        .unwrap();
        let fast = jwt_rbac::fast_rsa::FastRsa::new(&n, &[1, 0, 1]).unwrap();
        for i in 0..40 {
            let mut s = vec![0u8; key.size()];
            rng.fill(&mut s[..]);
            if i % 4 == 0 {
                s[0] = 0;
                s[1] = 0;
            }
            let expected = {
                let sb = rsa::BigUint::from_bytes_be(&s);
                if &sb >= key.n() {
                    None
                } else {
                    let m = sb.modpow(key.e(), key.n()).to_bytes_be();
                    let mut out = vec![0u8; key.size() - m.len()];
                    out.extend_from_slice(&m);
                    Some(out)
                }
            };
            assert_eq!(fast.public_op(&s), expected, "{kid} #{i}");
        }
        // Edge values (all-ones limbs in n - 1 and n - 2 carry through every column) and other
        // exponents (each bit pattern takes another mix of squarings and multiplications).
        let n_big = rsa::BigUint::from_bytes_be(&n);
        let edges = [
            rsa::BigUint::from(0u32),
            rsa::BigUint::from(1u32),
            rsa::BigUint::from(2u32),
            &n_big - 1u32,
            &n_big - 2u32,
            (&n_big >> 1usize) + 1u32,
        ];
        for e in [3u64, 17, 65537, 0x1_0000_0001, (1 << 33) - 1] {
            let e_bytes = e.to_be_bytes();
            let fast = jwt_rbac::fast_rsa::FastRsa::new(&n, &e_bytes).unwrap();
            let mut inputs: Vec<rsa::BigUint> = edges.to_vec();
            for _ in 0..6 {
                let mut s = vec![0u8; key.size()];
                rng.fill(&mut s[..]);
                inputs.push(rsa::BigUint::from_bytes_be(&s) % &n_big);
            }
            for x in inputs {
                let m = x.modpow(&rsa::BigUint::from(e), &n_big).to_bytes_be();
                let mut expected = vec![0u8; key.size() - m.len()];
                expected.extend_from_slice(&m);
                let mut s = vec![0u8; key.size()];
                let xb = x.to_bytes_be();
                s[key.size() - xb.len()..].copy_from_slice(&xb);
                assert_eq!(fast.public_op(&s), Some(expected), "{kid} e={e} s={x}");
            }
        }
        // Wrong lengths and s >= n are refused.
        assert_eq!(fast.public_op(&n[1..]), None);
        assert_eq!(fast.public_op(&n), None);
        assert_eq!(fast.public_op(&vec![0xff; key.size()]), None);
    }
}

#[test]
fn revoked_jti_and_sid() {
    let v = validator_with(
        &["RS256"],
        all_jwks(),
        json!({"revoked_jti": ["j-1"], "revoked_sid": ["s-9"]}),
    );
    let t = |c: Value| check(&v, &sign("RS256", "rsa-1", &claims_with(c)));
    assert_eq!(t(json!({"jti": "j-1"})), Err(Reason::TokenRevoked));
    assert_eq!(
        t(json!({"sid": "s-9", "jti": "j-2"})),
        Err(Reason::TokenRevoked)
    );
    assert_eq!(t(json!({"jti": "j-2", "sid": "s-1"})), Ok(()));
}

#[test]
fn hmac_with_a_remote_jwks_is_refused() {
    let config = json!({"providers": {"p": {"algorithms": ["RS256", "HS256"],
        "remote_jwks": {"upstream": "idp"}}}});
    let err = Settings::from_json(config.to_string().as_bytes()).unwrap_err();
    assert_eq!(err.field, "providers.p.algorithms[1]");
    let config = json!({"providers": {"p": {"algorithms": ["RS256"], "jwks": jwks(&["rsa-1"]),
        "remote_jwks": {"upstream": "idp"}}}});
    assert_eq!(
        Settings::from_json(config.to_string().as_bytes())
            .unwrap_err()
            .field,
        "providers.p"
    );
}
