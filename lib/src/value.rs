//! Structured values (meta_struct): a flat preorder list of tokens,
//! validated and encoded as one MessagePack value, with the semantics of
//! libdatadog's `structured_value.rs` (ABI fact sheet: kinds, depth ≤ 64, a
//! map followed by its key, value pairs; keys may be any value).

use crate::abi::{ErrorCode, MAX_VALUE_DEPTH};
use crate::ffi::{catch, catch_or, take, write_out, ByteSlice, Error, ExporterError, Slice};
use ddffi_batch::{
    Token, VALUE_ARRAY, VALUE_BINARY, VALUE_BOOL, VALUE_F64, VALUE_I64, VALUE_MAP, VALUE_NIL,
    VALUE_STRING, VALUE_U64,
};

/// `ddog_TracerValueToken`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct ValueToken {
    pub kind: u8,
    pub bool_value: u8,
    pub child_count: u32,
    pub i64_value: i64,
    pub u64_value: u64,
    pub f64_value: f64,
    pub bytes: ByteSlice,
}

fn invalid_input(message: &str) -> Error {
    Error::new(
        ErrorCode::InvalidInput,
        format!("structured value {message}"),
    )
}

/// The C tokens as [`Token`]s, each checked (kind, bool 0 or 1, byte slices, UTF-8).
///
/// # Safety
/// `tokens` is valid for `'a` (the ABI: for the call), and so is each token's slice.
pub unsafe fn tokens<'a>(tokens: Slice<ValueToken>) -> Result<Vec<Token<'a>>, Error> {
    // SAFETY: the caller's contract.
    let list = unsafe { tokens.as_slice("structured value tokens")? };
    let mut out = Vec::with_capacity(list.len());
    for t in list {
        let bytes = || {
            // SAFETY: the caller's contract.
            let b = unsafe { t.bytes.as_slice("structured value byte slice")? };
            if b.len() > u32::MAX as usize {
                return Err(invalid_input("byte string exceeds u32::MAX"));
            }
            Ok(b)
        };
        out.push(match t.kind as u32 {
            VALUE_NIL => Token::Nil,
            VALUE_BOOL if t.bool_value > 1 => return Err(invalid_input("boolean must be 0 or 1")),
            VALUE_BOOL => Token::Bool(t.bool_value == 1),
            VALUE_I64 => Token::I64(t.i64_value),
            VALUE_U64 => Token::U64(t.u64_value),
            VALUE_F64 => Token::F64(t.f64_value),
            VALUE_STRING => Token::Str(
                std::str::from_utf8(bytes()?)
                    .map_err(|_| invalid_input("string is not valid UTF-8"))?,
            ),
            VALUE_BINARY => Token::Bin(bytes()?),
            VALUE_ARRAY => Token::Array(t.child_count),
            VALUE_MAP => Token::Map(t.child_count),
            _ => return Err(invalid_input("contains an unknown token kind")),
        });
    }
    Ok(out)
}

/// Encodes one value from a preorder token list as MessagePack: all tokens,
/// exactly one value; InvalidInput otherwise.
pub fn encode(tokens: &[Token]) -> Result<Vec<u8>, Error> {
    if tokens.is_empty() {
        return Err(invalid_input("token slice is empty"));
    }
    let mut out = Vec::new();
    let mut index = 0;
    encode_one(tokens, &mut index, 0, &mut out)?;
    if index != tokens.len() {
        return Err(invalid_input("has trailing tokens"));
    }
    Ok(out)
}

fn encode_one(
    tokens: &[Token],
    index: &mut usize,
    depth: usize,
    out: &mut Vec<u8>,
) -> Result<(), Error> {
    let t = *tokens
        .get(*index)
        .ok_or_else(|| invalid_input("container is missing child tokens"))?;
    *index += 1;
    // Writing to a Vec cannot fail.
    let _ = match t {
        Token::Nil => rmp::encode::write_nil(out).map_err(drop),
        Token::Bool(b) => rmp::encode::write_bool(out, b).map_err(drop),
        Token::I64(v) => rmp::encode::write_sint(out, v).map(drop).map_err(drop),
        Token::U64(v) => rmp::encode::write_uint(out, v).map(drop).map_err(drop),
        Token::F64(v) => rmp::encode::write_f64(out, v).map_err(drop),
        Token::Str(s) => rmp::encode::write_str(out, s).map_err(drop),
        Token::Bin(b) => rmp::encode::write_bin(out, b).map_err(drop),
        Token::Array(n) | Token::Map(n) => {
            // The root is at depth 0, so at most 64 nested containers.
            if depth >= MAX_VALUE_DEPTH {
                return Err(invalid_input(&format!(
                    "exceeds maximum depth of {MAX_VALUE_DEPTH}"
                )));
            }
            let values = if let Token::Map(_) = t {
                // libdatadog doubles the count in u32 arithmetic.
                if n > u32::MAX / 2 {
                    return Err(invalid_input("map child count overflows"));
                }
                let _ = rmp::encode::write_map_len(out, n);
                2 * n as usize
            } else {
                let _ = rmp::encode::write_array_len(out, n);
                n as usize
            };
            for _ in 0..values {
                encode_one(tokens, index, depth + 1, out)?;
            }
            Ok(())
        }
    };
    Ok(())
}

/// An encoded value (`ddog_TracerEncodedValue`).
pub struct EncodedValue(Vec<u8>);

/// # Safety
/// `list` valid for the call; `out` writable for one pointer.
#[no_mangle]
pub unsafe extern "C" fn ddog_tracer_encode_value(
    list: Slice<ValueToken>,
    out: *mut *mut EncodedValue,
) -> *mut ExporterError {
    catch(|| {
        // SAFETY: the caller's contract.
        let bytes = encode(&unsafe { tokens(list)? })?;
        // SAFETY: the caller's contract.
        unsafe { write_out(out, EncodedValue(bytes), "encode_value") }
    })
}

/// The value's bytes, valid until it is freed (empty for NULL).
///
/// # Safety
/// `value` NULL or an encoded value handle.
#[no_mangle]
pub unsafe extern "C" fn ddog_tracer_encoded_value_as_slice(
    value: *const EncodedValue,
) -> ByteSlice {
    catch_or(ByteSlice::EMPTY, || {
        // SAFETY: the caller's contract.
        unsafe { value.as_ref() }.map_or(ByteSlice::EMPTY, |v| ByteSlice::new(&v.0))
    })
}

/// # Safety
/// `value` NULL or an encoded value handle, freed once.
#[no_mangle]
pub unsafe extern "C" fn ddog_tracer_encoded_value_free(value: *mut EncodedValue) {
    // SAFETY: the caller's contract.
    catch_or((), || drop(unsafe { take(value) }))
}
