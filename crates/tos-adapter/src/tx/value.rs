//! Contract call parameters: TOS's value cells.
//!
//! A cell is a tag byte and its content: 0 a primitive, 1 bytes (a `u32` length, at most
//! [`MAX_CELL_BYTES`]), 2 an object (a `u32` count of cells, at most [`MAX_CELL_ITEMS`]),
//! 3 a map (a `u32` count of key and value cells). Cells nest at most [`MAX_CELL_DEPTH`]
//! deep. A primitive is a tag and its value: 0 null, 1 `u8`, 2 `u16`, 3 `u32`, 4 `u64`,
//! 5 `u128`, 6 `U256` (32 bytes), 7 bool, 8 a string (`u16` length, UTF-8), 9 a range (two
//! primitives of one numeric type). Tag 10, an opaque value with a serializer of its own
//! that the daemon's contract runtime defines, is not decoded here.

/// Longest bytes cell.
pub const MAX_CELL_BYTES: usize = 1_000_000;
/// Most items of an object or entries of a map.
pub const MAX_CELL_ITEMS: usize = 10_000;
/// Deepest nesting of cells.
pub const MAX_CELL_DEPTH: usize = 64;

/// A primitive value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Primitive {
    /// Nothing.
    Null,
    /// A `u8`.
    U8(u8),
    /// A `u16`.
    U16(u16),
    /// A `u32`.
    U32(u32),
    /// A `u64`.
    U64(u64),
    /// A `u128`.
    U128(u128),
    /// A 256-bit unsigned integer, 32 bytes big-endian.
    U256([u8; 32]),
    /// A bool.
    Bool(bool),
    /// A UTF-8 string of at most 65,535 bytes.
    String(String),
    /// A range between two numbers of the same type.
    Range(Box<Primitive>, Box<Primitive>),
}

impl Primitive {
    /// The tag of a numeric primitive, `None` for any other (what a range may hold).
    pub fn numeric_tag(&self) -> Option<u8> {
        match self {
            Primitive::U8(_) => Some(1),
            Primitive::U16(_) => Some(2),
            Primitive::U32(_) => Some(3),
            Primitive::U64(_) => Some(4),
            Primitive::U128(_) => Some(5),
            Primitive::U256(_) => Some(6),
            _ => None,
        }
    }
}

/// A contract call parameter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ValueCell {
    /// A primitive.
    Default(Primitive),
    /// Bytes.
    Bytes(Vec<u8>),
    /// A list of cells.
    Object(Vec<ValueCell>),
    /// Key and value cells.
    Map(Vec<(ValueCell, ValueCell)>),
}

impl ValueCell {
    /// A `u64` primitive.
    pub fn u64(n: u64) -> Self {
        ValueCell::Default(Primitive::U64(n))
    }

    /// The bytes the project's contract runtime passes to a contract for this parameter:
    /// a bytes cell's own bytes, a number's little-endian bytes (the width of its type), a
    /// bool's byte, a string's UTF-8 and nothing for null; any other cell its wire
    /// encoding.
    pub fn contract_bytes(&self) -> Vec<u8> {
        match self {
            ValueCell::Bytes(bytes) => bytes.clone(),
            ValueCell::Default(Primitive::Null) => Vec::new(),
            ValueCell::Default(Primitive::U8(n)) => vec![*n],
            ValueCell::Default(Primitive::U16(n)) => n.to_le_bytes().to_vec(),
            ValueCell::Default(Primitive::U32(n)) => n.to_le_bytes().to_vec(),
            ValueCell::Default(Primitive::U64(n)) => n.to_le_bytes().to_vec(),
            ValueCell::Default(Primitive::U128(n)) => n.to_le_bytes().to_vec(),
            ValueCell::Default(Primitive::U256(n)) => n.iter().rev().copied().collect(),
            ValueCell::Default(Primitive::Bool(b)) => vec![u8::from(*b)],
            ValueCell::Default(Primitive::String(s)) => s.as_bytes().to_vec(),
            other => {
                let mut out = Vec::new();
                super::wire::write_cell(other, &mut out);
                out
            }
        }
    }
}
