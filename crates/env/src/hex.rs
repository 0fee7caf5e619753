//! Byte buffers in JSON states as one lowercase hex string (two characters a
//! byte instead of up to four for a number array), for serde's `with`.

use serde::{Deserialize, Deserializer, Serializer};

/// Writes `bytes` as one hex string.
pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        text.push(char::from(DIGITS[usize::from(b >> 4)]));
        text.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    s.serialize_str(&text)
}

/// Reads a hex string written by [`serialize`].
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
    let text = String::deserialize(d)?;
    if text.len() % 2 != 0 {
        return Err(serde::de::Error::custom(format!(
            "a hex byte string has an even length, this one has {}",
            text.len()
        )));
    }
    text.as_bytes()
        .chunks_exact(2)
        .map(|pair| {
            std::str::from_utf8(pair)
                .ok()
                .and_then(|p| u8::from_str_radix(p, 16).ok())
                .ok_or_else(|| {
                    serde::de::Error::custom(format!(
                        "`{}` is not a hex byte",
                        String::from_utf8_lossy(pair)
                    ))
                })
        })
        .collect()
}
