//! Secrets in etcd, sealed: AES-256-GCM under the fleet's key (read by
//! every instance from `[fleet] secret_key_file`, never written to etcd),
//! a random nonce per value, and the value's etcd key as associated data so
//! that a sealed value moved to another key does not open.
//!
//! A sealed value is `rampart-sealed-1:` followed by the nonce and the
//! ciphertext with its tag.

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};

use super::FleetError;

const MAGIC: &[u8] = b"rampart-sealed-1:";

/// Seals `plain` for etcd key `key`.
pub fn seal(secret: &[u8; 32], key: &str, plain: &[u8]) -> Result<Vec<u8>, FleetError> {
    let fail = |what: &str| FleetError::Settings(format!("sealing {key}: {what}"));
    let aead = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, secret).map_err(|_| fail("bad key"))?);
    let mut nonce = [0u8; NONCE_LEN];
    aws_lc_rs::rand::fill(&mut nonce).map_err(|_| fail("no random numbers"))?;
    let mut sealed = plain.to_vec();
    aead.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(key.as_bytes()),
        &mut sealed,
    )
    .map_err(|_| fail("encryption failed"))?;
    let mut out = Vec::with_capacity(MAGIC.len() + NONCE_LEN + sealed.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&sealed);
    Ok(out)
}

/// Opens what [`seal`] sealed for `key`.
pub fn open(secret: &[u8; 32], key: &str, sealed: &[u8]) -> Result<Vec<u8>, FleetError> {
    let corrupt = |reason: &str| FleetError::Corrupt {
        key: key.to_string(),
        reason: reason.to_string(),
    };
    let rest = sealed
        .strip_prefix(MAGIC)
        .ok_or_else(|| corrupt("not a sealed value"))?;
    if rest.len() < NONCE_LEN {
        return Err(corrupt("too short"));
    }
    let (nonce, ct) = rest.split_at(NONCE_LEN);
    let mut nonce_bytes = [0u8; NONCE_LEN];
    nonce_bytes.copy_from_slice(nonce);
    let aead = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, secret).map_err(|_| corrupt("bad key"))?);
    let mut buf = ct.to_vec();
    let plain = aead
        .open_in_place(
            Nonce::assume_unique_for_key(nonce_bytes),
            Aad::from(key.as_bytes()),
            &mut buf,
        )
        .map_err(|_| {
            corrupt("it does not open with this instance's secret_key_file (another key, or altered)")
        })?;
    Ok(plain.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_value_opens_only_with_its_key_and_under_its_name() {
        let k = [7u8; 32];
        let s = seal(&k, "/r/acme/cert/site", b"-----BEGIN PRIVATE KEY-----").expect("seal");
        assert!(!s.windows(11).any(|w| w == b"PRIVATE KEY"));
        assert_eq!(
            open(&k, "/r/acme/cert/site", &s).expect("open"),
            b"-----BEGIN PRIVATE KEY-----"
        );
        assert!(open(&[8u8; 32], "/r/acme/cert/site", &s).is_err());
        assert!(open(&k, "/r/acme/cert/other", &s).is_err());
        let mut altered = s.clone();
        let last = altered.len() - 1;
        altered[last] ^= 1;
        assert!(open(&k, "/r/acme/cert/site", &altered).is_err());
        // Two seals of one value differ (a fresh nonce each).
        assert_ne!(
            s,
            seal(&k, "/r/acme/cert/site", b"-----BEGIN PRIVATE KEY-----").expect("seal")
        );
    }
}
