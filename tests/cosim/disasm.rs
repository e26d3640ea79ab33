//! Disassembly for divergence reports (yaxpeax-arm's Display).

use yaxpeax_arch::{Decoder, U8Reader};
use yaxpeax_arm::armv8::a64::InstDecoder;

/// The instruction text, or why it does not decode.
pub fn disasm(word: u32) -> String {
    let bytes = word.to_le_bytes();
    match InstDecoder::default().decode(&mut U8Reader::new(&bytes)) {
        Ok(inst) => inst.to_string(),
        Err(e) => format!("<undecodable: {e}>"),
    }
}

/// Whether yaxpeax-arm decodes the word.
pub fn decodes(word: u32) -> bool {
    let bytes = word.to_le_bytes();
    InstDecoder::default()
        .decode(&mut U8Reader::new(&bytes))
        .is_ok()
}
