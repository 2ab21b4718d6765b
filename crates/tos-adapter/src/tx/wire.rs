//! The wire format: a strict decoder and the encoder that gives the same bytes back.
//!
//! The decoder checks every count and length against its bound and against the bytes
//! left before it allocates anything, so no input can make it allocate more than a small
//! multiple of its own size; every malformed input is a [`DecodeError`] naming the offset
//! and the reason, never a panic. Anything the encoder could not have written is refused
//! (a bool that is not 0 or 1, a duplicate multisig participant or signer id, an
//! unassigned tag), except duplicate deposit assets, which TOS decodes into a map (the
//! first position, the last amount) and so cannot give back byte for byte.

use super::value::{Primitive, ValueCell, MAX_CELL_BYTES, MAX_CELL_DEPTH, MAX_CELL_ITEMS};
use super::{
    BurnPayload, DeployContractPayload, Deposits, FeeType, InvokeConstructorPayload,
    InvokeContractPayload, MultiSigPayload, MultiSigSignature, Reference, Transaction,
    TransactionType, TransferPayload, ELF_MAGIC, MAX_MODULE_SIZE, MAX_MULTISIG_PARTICIPANTS,
    MAX_TRANSFERS, MAX_WIRE_BYTES, TX_VERSION,
};
use crate::crypto::Signature;
use crate::primitives::{Hash, PublicKey};

/// Why bytes are not a transaction.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeReason {
    /// The input ends inside a field.
    #[error("truncated")]
    Truncated,
    /// Bytes follow the transaction.
    #[error("{0} trailing bytes")]
    TrailingBytes(usize),
    /// A version other than 1.
    #[error("unsupported version {0}")]
    Version(u8),
    /// A transaction type outside 0-4.
    #[error("unknown transaction type {0}")]
    TxType(u8),
    /// A fee type other than 0 (TOS) or 2 (UNO).
    #[error("unknown fee type {0}")]
    FeeType(u8),
    /// A bool byte other than 0 or 1.
    #[error("invalid bool {0}")]
    Bool(u8),
    /// A count or length out of its range.
    #[error("{what}: {got} out of range ({min} to {max})")]
    Count {
        /// What was counted.
        what: &'static str,
        /// The count read.
        got: u64,
        /// The least allowed.
        min: u64,
        /// The most allowed.
        max: u64,
    },
    /// Something the format forbids.
    #[error("{0}")]
    Invalid(&'static str),
}

/// Bytes that are not one transaction: where, and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid transaction at byte {offset}: {reason}")]
pub struct DecodeError {
    /// Offset of the field that failed.
    pub offset: usize,
    /// Why.
    pub reason: DecodeReason,
}

/// Most items a vector reserves room for before its items are read.
const MAX_RESERVED: usize = 512;

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

type Read<T> = Result<T, DecodeError>;

impl<'a> Reader<'a> {
    fn error_at<T>(&self, offset: usize, reason: DecodeReason) -> Read<T> {
        Err(DecodeError { offset, reason })
    }

    fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    fn take(&mut self, n: usize) -> Read<&'a [u8]> {
        if self.remaining() < n {
            return self.error_at(self.pos, DecodeReason::Truncated);
        }
        let slice = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(slice)
    }

    fn array<const N: usize>(&mut self) -> Read<[u8; N]> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn u8(&mut self) -> Read<u8> {
        Ok(self.array::<1>()?[0])
    }

    fn u16(&mut self) -> Read<u16> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    fn u32(&mut self) -> Read<u32> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    fn u64(&mut self) -> Read<u64> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    fn u128(&mut self) -> Read<u128> {
        Ok(u128::from_be_bytes(self.array()?))
    }

    fn bool(&mut self) -> Read<bool> {
        let at = self.pos;
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            other => self.error_at(at, DecodeReason::Bool(other)),
        }
    }

    fn hash(&mut self) -> Read<Hash> {
        Ok(Hash(self.array()?))
    }

    fn key(&mut self) -> Read<PublicKey> {
        Ok(PublicKey(self.array()?))
    }

    /// A count read at `at`, checked to lie in `min..=max`.
    fn counted(&self, at: usize, what: &'static str, got: u64, min: u64, max: u64) -> Read<usize> {
        if got < min || got > max {
            return self.error_at(
                at,
                DecodeReason::Count {
                    what,
                    got,
                    min,
                    max,
                },
            );
        }
        // `max` is one of this module's small bounds: `got` fits in usize.
        Ok(got as usize)
    }

    fn invalid<T>(&self, at: usize, what: &'static str) -> Read<T> {
        self.error_at(at, DecodeReason::Invalid(what))
    }

    fn signature(&mut self) -> Read<Signature> {
        let at = self.pos;
        let bytes: [u8; 64] = self.array()?;
        match Signature::from_bytes(&bytes) {
            Some(signature) => Ok(signature),
            None => self.invalid(at, "signature scalar not canonical"),
        }
    }

    /// A vector whose items take at least `min_item` bytes each: its capacity is bounded
    /// by the bytes left and by a small constant (nested cells each reserve from the same
    /// bytes left), so a forged count allocates nothing it cannot fill; a longer vector
    /// grows as its items are read.
    fn vec_for<T>(&self, count: usize, min_item: usize) -> Vec<T> {
        Vec::with_capacity(
            count
                .min(self.remaining() / min_item.max(1))
                .min(MAX_RESERVED),
        )
    }
}

/// Decodes exactly one transaction.
pub(super) fn read_transaction(bytes: &[u8]) -> Read<Transaction> {
    let mut r = Reader { bytes, pos: 0 };
    let version = r.u8()?;
    if version != TX_VERSION {
        return r.error_at(0, DecodeReason::Version(version));
    }
    let chain_id = r.u8()?;
    let source = r.key()?;
    let type_at = r.pos;
    let data = match r.u8()? {
        0 => TransactionType::Burn(BurnPayload {
            asset: r.hash()?,
            amount: r.u64()?,
        }),
        1 => TransactionType::Transfers(read_transfers(&mut r)?),
        2 => TransactionType::MultiSig(read_multisig_payload(&mut r)?),
        3 => TransactionType::InvokeContract(Box::new(read_invoke(&mut r)?)),
        4 => TransactionType::DeployContract(Box::new(read_deploy(&mut r)?)),
        other => return r.error_at(type_at, DecodeReason::TxType(other)),
    };
    let fee = r.u64()?;
    let fee_type_at = r.pos;
    let fee_type = match r.u8()? {
        0 => FeeType::Tos,
        2 => FeeType::Uno,
        other => return r.error_at(fee_type_at, DecodeReason::FeeType(other)),
    };
    let nonce = r.u64()?;
    let reference = Reference {
        hash: r.hash()?,
        topoheight: r.u64()?,
    };
    let multisig = if r.bool()? {
        let count = usize::from(r.u8()?);
        let mut signatures: Vec<MultiSigSignature> = r.vec_for(count, 65);
        for _ in 0..count {
            let id_at = r.pos;
            let id = r.u8()?;
            if signatures.iter().any(|s| s.id == id) {
                return r.invalid(id_at, "duplicate multisig signer id");
            }
            signatures.push(MultiSigSignature {
                id,
                signature: r.signature()?,
            });
        }
        Some(signatures)
    } else {
        None
    };
    let signature = r.signature()?;
    if r.remaining() != 0 {
        return r.error_at(r.pos, DecodeReason::TrailingBytes(r.remaining()));
    }
    Ok(Transaction {
        version,
        chain_id,
        source,
        data,
        fee,
        fee_type,
        nonce,
        reference,
        multisig,
        signature,
    })
}

fn read_transfers(r: &mut Reader<'_>) -> Read<Vec<TransferPayload>> {
    let at = r.pos;
    let count = u64::from(r.u16()?);
    let count = r.counted(at, "transfer count", count, 1, MAX_TRANSFERS as u64)?;
    let mut transfers = r.vec_for(count, 81);
    for _ in 0..count {
        let asset = r.hash()?;
        let destination = r.key()?;
        let amount = r.u64()?;
        let extra_data = if r.bool()? {
            let len_at = r.pos;
            let len = u64::from(r.u16()?);
            let len = r.counted(len_at, "extra data length", len, 0, MAX_WIRE_BYTES as u64)?;
            Some(r.take(len)?.to_vec())
        } else {
            None
        };
        transfers.push(TransferPayload {
            asset,
            destination,
            amount,
            extra_data,
        });
    }
    Ok(transfers)
}

fn read_multisig_payload(r: &mut Reader<'_>) -> Read<MultiSigPayload> {
    let threshold = r.u8()?;
    let mut participants = Vec::new();
    if threshold != 0 {
        let at = r.pos;
        let count = u64::from(r.u8()?);
        let count = r.counted(
            at,
            "multisig participant count",
            count,
            1,
            MAX_MULTISIG_PARTICIPANTS as u64,
        )?;
        participants = r.vec_for(count, 32);
        for _ in 0..count {
            let key_at = r.pos;
            let participant = r.key()?;
            if participants.contains(&participant) {
                return r.invalid(key_at, "duplicate multisig participant");
            }
            participants.push(participant);
        }
    }
    Ok(MultiSigPayload {
        threshold,
        participants,
    })
}

fn read_deposits(r: &mut Reader<'_>) -> Read<Deposits> {
    let count = usize::from(r.u8()?);
    let mut deposits: Deposits = r.vec_for(count, 41);
    for _ in 0..count {
        let asset = r.hash()?;
        let tag_at = r.pos;
        if r.u8()? != 0 {
            return r.invalid(tag_at, "deposit is not public (tag 0)");
        }
        let amount = r.u64()?;
        // TOS decodes deposits into a map: a repeated asset keeps its first position and
        // takes the last amount.
        match deposits.iter_mut().find(|(a, _)| *a == asset) {
            Some(entry) => entry.1 = amount,
            None => deposits.push((asset, amount)),
        }
    }
    Ok(deposits)
}

fn read_invoke(r: &mut Reader<'_>) -> Read<InvokeContractPayload> {
    let contract = r.hash()?;
    let deposits = read_deposits(r)?;
    let entry_id = r.u16()?;
    let max_gas = r.u64()?;
    let count = usize::from(r.u8()?);
    let mut parameters = r.vec_for(count, 2);
    for _ in 0..count {
        parameters.push(read_cell(r, 1)?);
    }
    Ok(InvokeContractPayload {
        contract,
        deposits,
        entry_id,
        max_gas,
        parameters,
    })
}

fn read_deploy(r: &mut Reader<'_>) -> Read<DeployContractPayload> {
    let at = r.pos;
    let len = u64::from(r.u32()?);
    let len = r.counted(at, "module length", len, 4, MAX_MODULE_SIZE as u64)?;
    let module_at = r.pos;
    let module = r.take(len)?;
    if module[..4] != ELF_MAGIC {
        return r.invalid(module_at, "module is not an ELF file");
    }
    let module = module.to_vec();
    let invoke = if r.bool()? {
        Some(InvokeConstructorPayload {
            max_gas: r.u64()?,
            deposits: read_deposits(r)?,
        })
    } else {
        None
    };
    Ok(DeployContractPayload { module, invoke })
}

fn read_cell(r: &mut Reader<'_>, depth: usize) -> Read<ValueCell> {
    let at = r.pos;
    if depth > MAX_CELL_DEPTH {
        return r.invalid(at, "value cells nested too deep");
    }
    match r.u8()? {
        0 => Ok(ValueCell::Default(read_primitive(r)?)),
        1 => {
            let len_at = r.pos;
            let len = u64::from(r.u32()?);
            let len = r.counted(len_at, "bytes cell length", len, 0, MAX_CELL_BYTES as u64)?;
            Ok(ValueCell::Bytes(r.take(len)?.to_vec()))
        }
        2 => {
            let count_at = r.pos;
            let count = u64::from(r.u32()?);
            let count = r.counted(
                count_at,
                "object item count",
                count,
                0,
                MAX_CELL_ITEMS as u64,
            )?;
            let mut items = r.vec_for(count, 2);
            for _ in 0..count {
                items.push(read_cell(r, depth + 1)?);
            }
            Ok(ValueCell::Object(items))
        }
        3 => {
            let count_at = r.pos;
            let count = u64::from(r.u32()?);
            let count = r.counted(count_at, "map entry count", count, 0, MAX_CELL_ITEMS as u64)?;
            let mut entries = r.vec_for(count, 4);
            for _ in 0..count {
                let key = read_cell(r, depth + 1)?;
                let value = read_cell(r, depth + 1)?;
                entries.push((key, value));
            }
            Ok(ValueCell::Map(entries))
        }
        _ => r.invalid(at, "unknown value cell tag"),
    }
}

fn read_primitive(r: &mut Reader<'_>) -> Read<Primitive> {
    let at = r.pos;
    Ok(match r.u8()? {
        0 => Primitive::Null,
        1 => Primitive::U8(r.u8()?),
        2 => Primitive::U16(r.u16()?),
        3 => Primitive::U32(r.u32()?),
        4 => Primitive::U64(r.u64()?),
        5 => Primitive::U128(r.u128()?),
        6 => Primitive::U256(r.array()?),
        7 => Primitive::Bool(r.bool()?),
        8 => {
            let len = usize::from(r.u16()?);
            let text_at = r.pos;
            match std::str::from_utf8(r.take(len)?) {
                Ok(s) => Primitive::String(s.to_owned()),
                Err(_) => return r.invalid(text_at, "string is not UTF-8"),
            }
        }
        9 => {
            // Both ends are numbers of one type: read each end's tag first, so that a range
            // can never nest (no recursion an input could deepen).
            let low = read_number(r)?;
            let high = read_number(r)?;
            if low.numeric_tag() != high.numeric_tag() {
                return r.invalid(at, "range of mixed primitives");
            }
            Primitive::Range(Box::new(low), Box::new(high))
        }
        10 => return r.invalid(at, "opaque primitives are not supported"),
        _ => return r.invalid(at, "unknown primitive tag"),
    })
}

/// A numeric primitive (tags 1 to 6), the end of a range.
fn read_number(r: &mut Reader<'_>) -> Read<Primitive> {
    let at = r.pos;
    Ok(match r.u8()? {
        1 => Primitive::U8(r.u8()?),
        2 => Primitive::U16(r.u16()?),
        3 => Primitive::U32(r.u32()?),
        4 => Primitive::U64(r.u64()?),
        5 => Primitive::U128(r.u128()?),
        6 => Primitive::U256(r.array()?),
        _ => return r.invalid(at, "a range of non-numeric primitives"),
    })
}

fn put_u16(out: &mut Vec<u8>, n: u16) {
    out.extend_from_slice(&n.to_be_bytes());
}

fn put_u32(out: &mut Vec<u8>, n: u32) {
    out.extend_from_slice(&n.to_be_bytes());
}

fn put_u64(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(&n.to_be_bytes());
}

/// Lengths and counts the decoder bounds far below their field's maximum: one that does
/// not fit saturates, so an oversized value encodes to bytes the decoder refuses rather
/// than to other, valid bytes.
fn len32(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX)
}

fn len16(len: usize) -> u16 {
    u16::try_from(len).unwrap_or(u16::MAX)
}

fn len8(len: usize) -> u8 {
    u8::try_from(len).unwrap_or(u8::MAX)
}

/// The signing bytes: version through reference.
pub(super) fn write_signed_part(tx: &Transaction, out: &mut Vec<u8>) {
    out.push(tx.version);
    out.push(tx.chain_id);
    out.extend_from_slice(&tx.source.0);
    out.push(tx.data.opcode());
    match &tx.data {
        TransactionType::Burn(burn) => {
            out.extend_from_slice(&burn.asset.0);
            put_u64(out, burn.amount);
        }
        TransactionType::Transfers(transfers) => {
            put_u16(out, len16(transfers.len()));
            for t in transfers {
                out.extend_from_slice(&t.asset.0);
                out.extend_from_slice(&t.destination.0);
                put_u64(out, t.amount);
                match &t.extra_data {
                    None => out.push(0),
                    Some(data) => {
                        out.push(1);
                        put_u16(out, len16(data.len()));
                        out.extend_from_slice(data);
                    }
                }
            }
        }
        TransactionType::MultiSig(multisig) => {
            out.push(multisig.threshold);
            if multisig.threshold != 0 {
                out.push(len8(multisig.participants.len()));
                for p in &multisig.participants {
                    out.extend_from_slice(&p.0);
                }
            }
        }
        TransactionType::InvokeContract(invoke) => {
            out.extend_from_slice(&invoke.contract.0);
            write_deposits(&invoke.deposits, out);
            put_u16(out, invoke.entry_id);
            put_u64(out, invoke.max_gas);
            out.push(len8(invoke.parameters.len()));
            for cell in &invoke.parameters {
                write_cell(cell, out);
            }
        }
        TransactionType::DeployContract(deploy) => {
            put_u32(out, len32(deploy.module.len()));
            out.extend_from_slice(&deploy.module);
            match &deploy.invoke {
                None => out.push(0),
                Some(invoke) => {
                    out.push(1);
                    put_u64(out, invoke.max_gas);
                    write_deposits(&invoke.deposits, out);
                }
            }
        }
    }
    put_u64(out, tx.fee);
    out.push(tx.fee_type as u8);
    put_u64(out, tx.nonce);
    out.extend_from_slice(&tx.reference.hash.0);
    put_u64(out, tx.reference.topoheight);
}

/// The whole wire encoding.
pub(super) fn write_transaction(tx: &Transaction, out: &mut Vec<u8>) {
    write_signed_part(tx, out);
    match &tx.multisig {
        None => out.push(0),
        Some(signatures) => {
            out.push(1);
            out.push(len8(signatures.len()));
            for s in signatures {
                out.push(s.id);
                out.extend_from_slice(&s.signature.to_bytes());
            }
        }
    }
    out.extend_from_slice(&tx.signature.to_bytes());
}

fn write_deposits(deposits: &Deposits, out: &mut Vec<u8>) {
    out.push(len8(deposits.len()));
    for (asset, amount) in deposits {
        out.extend_from_slice(&asset.0);
        out.push(0);
        put_u64(out, *amount);
    }
}

/// A value cell's encoding.
pub(super) fn write_cell(cell: &ValueCell, out: &mut Vec<u8>) {
    match cell {
        ValueCell::Default(primitive) => {
            out.push(0);
            write_primitive(primitive, out);
        }
        ValueCell::Bytes(bytes) => {
            out.push(1);
            put_u32(out, len32(bytes.len()));
            out.extend_from_slice(bytes);
        }
        ValueCell::Object(items) => {
            out.push(2);
            put_u32(out, len32(items.len()));
            for item in items {
                write_cell(item, out);
            }
        }
        ValueCell::Map(entries) => {
            out.push(3);
            put_u32(out, len32(entries.len()));
            for (key, value) in entries {
                write_cell(key, out);
                write_cell(value, out);
            }
        }
    }
}

fn write_primitive(primitive: &Primitive, out: &mut Vec<u8>) {
    match primitive {
        Primitive::Null => out.push(0),
        Primitive::U8(n) => out.extend_from_slice(&[1, *n]),
        Primitive::U16(n) => {
            out.push(2);
            put_u16(out, *n);
        }
        Primitive::U32(n) => {
            out.push(3);
            put_u32(out, *n);
        }
        Primitive::U64(n) => {
            out.push(4);
            put_u64(out, *n);
        }
        Primitive::U128(n) => {
            out.push(5);
            out.extend_from_slice(&n.to_be_bytes());
        }
        Primitive::U256(bytes) => {
            out.push(6);
            out.extend_from_slice(bytes);
        }
        Primitive::Bool(b) => out.extend_from_slice(&[7, u8::from(*b)]),
        Primitive::String(s) => {
            out.push(8);
            put_u16(out, len16(s.len()));
            out.extend_from_slice(s.as_bytes());
        }
        Primitive::Range(low, high) => {
            out.push(9);
            write_primitive(low, out);
            write_primitive(high, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::KeyPair;
    use crate::tx::DEVNET_CHAIN_ID;
    use proptest::prelude::*;

    /// One transaction of each kind, signed; the invoke is at index 4.
    fn every_kind() -> Vec<Transaction> {
        let alice = KeyPair::test_account(2).unwrap();
        let asset = Hash([3; 32]);
        let kinds = vec![
            TransactionType::Transfers(vec![
                TransferPayload {
                    asset,
                    destination: PublicKey([4; 32]),
                    amount: 5,
                    extra_data: Some(vec![6, 7]),
                },
                TransferPayload {
                    asset: Hash([0; 32]),
                    destination: PublicKey([5; 32]),
                    amount: 0,
                    extra_data: None,
                },
            ]),
            TransactionType::Burn(BurnPayload { asset, amount: 8 }),
            TransactionType::MultiSig(MultiSigPayload {
                threshold: 1,
                participants: vec![PublicKey([9; 32]), PublicKey([10; 32])],
            }),
            TransactionType::MultiSig(MultiSigPayload {
                threshold: 0,
                participants: vec![],
            }),
            TransactionType::InvokeContract(Box::new(InvokeContractPayload {
                contract: Hash([10; 32]),
                deposits: vec![(asset, 11), (Hash([0; 32]), 1)],
                entry_id: 12,
                max_gas: 13,
                parameters: vec![
                    ValueCell::u64(123_456),
                    ValueCell::Default(Primitive::String("hello".into())),
                    ValueCell::Bytes(vec![1, 2, 3]),
                    ValueCell::Object(vec![ValueCell::Default(Primitive::Null)]),
                    ValueCell::Map(vec![(
                        ValueCell::Default(Primitive::Bool(true)),
                        ValueCell::Default(Primitive::Range(
                            Box::new(Primitive::U128(1)),
                            Box::new(Primitive::U128(u128::MAX)),
                        )),
                    )]),
                    ValueCell::Default(Primitive::U256([7; 32])),
                ],
            })),
            TransactionType::DeployContract(Box::new(DeployContractPayload {
                module: b"\x7fELF\x02\x01".to_vec(),
                invoke: Some(InvokeConstructorPayload {
                    max_gas: 17,
                    deposits: vec![],
                }),
            })),
        ];
        kinds
            .into_iter()
            .enumerate()
            .map(|(i, data)| {
                let mut tx =
                    Transaction::new(DEVNET_CHAIN_ID, alice.public_key(), i as u64, 100, data);
                tx.reference.topoheight = 7;
                tx.sign(&alice);
                tx
            })
            .collect()
    }

    #[test]
    fn every_kind_round_trips_byte_for_byte() {
        for tx in every_kind() {
            let wire = tx.to_wire();
            let decoded = Transaction::from_wire(&wire).unwrap();
            assert_eq!(decoded, tx);
            assert_eq!(decoded.to_wire(), wire);
        }
    }

    #[test]
    fn every_prefix_and_every_extension_is_refused() {
        for tx in every_kind() {
            let wire = tx.to_wire();
            for len in 0..wire.len() {
                let error = Transaction::from_wire(&wire[..len]).unwrap_err();
                assert!(error.offset <= len, "{error}");
            }
            let mut longer = wire.clone();
            longer.push(0);
            assert_eq!(
                Transaction::from_wire(&longer).unwrap_err().reason,
                DecodeReason::TrailingBytes(1)
            );
        }
    }

    #[test]
    fn counts_are_bounded_before_allocation() {
        let tx = &every_kind()[0];
        let mut wire = tx.to_wire();
        // The transfer count follows version, chain id, source and type.
        wire[35..37].copy_from_slice(&(MAX_TRANSFERS as u16 + 1).to_be_bytes());
        assert!(matches!(
            Transaction::from_wire(&wire).unwrap_err().reason,
            DecodeReason::Count {
                what: "transfer count",
                ..
            }
        ));
        wire[35..37].copy_from_slice(&0u16.to_be_bytes());
        assert!(Transaction::from_wire(&wire).is_err());
        // A forged object count of 10,000 with no bytes behind it.
        let mut cell = vec![2];
        cell.extend_from_slice(&10_000u32.to_be_bytes());
        let mut r = Reader {
            bytes: &cell,
            pos: 0,
        };
        assert_eq!(
            read_cell(&mut r, 1).unwrap_err().reason,
            DecodeReason::Truncated
        );
    }

    #[test]
    fn duplicate_deposits_decode_as_tos_does_and_do_not_round_trip() {
        let mut tx = every_kind().remove(4);
        let asset = Hash([3; 32]);
        if let TransactionType::InvokeContract(invoke) = &mut tx.data {
            invoke.deposits = vec![(asset, 1), (Hash([1; 32]), 2), (asset, 3)];
        }
        let wire = tx.to_wire();
        let decoded = Transaction::from_wire(&wire).unwrap();
        let TransactionType::InvokeContract(invoke) = &decoded.data else {
            panic!("not an invoke");
        };
        assert_eq!(invoke.deposits, vec![(asset, 3), (Hash([1; 32]), 2)]);
        assert_ne!(decoded.to_wire(), wire);
    }

    #[test]
    fn ranges_cannot_nest() {
        // A range whose end is a range, 100,000 deep: refused at the second tag, without
        // recursion.
        let mut cell = vec![0u8];
        cell.extend(std::iter::repeat(9u8).take(100_000));
        let mut r = Reader {
            bytes: &cell,
            pos: 0,
        };
        assert_eq!(
            read_cell(&mut r, 1).unwrap_err().reason,
            DecodeReason::Invalid("a range of non-numeric primitives")
        );
        // Mixed ends are refused too; matching ones decode.
        let mixed = [0, 9, 1, 7, 2, 0, 9];
        let mut r = Reader {
            bytes: &mixed,
            pos: 0,
        };
        assert!(read_cell(&mut r, 1).is_err());
        let good = [0, 9, 1, 7, 1, 9];
        let mut r = Reader {
            bytes: &good,
            pos: 0,
        };
        assert_eq!(
            read_cell(&mut r, 1).unwrap(),
            ValueCell::Default(Primitive::Range(
                Box::new(Primitive::U8(7)),
                Box::new(Primitive::U8(9))
            ))
        );
    }

    #[test]
    fn deep_cells_are_refused() {
        let mut cell = ValueCell::Default(Primitive::Null);
        for _ in 0..MAX_CELL_DEPTH {
            cell = ValueCell::Object(vec![cell]);
        }
        let decode = |cell: &ValueCell| {
            let mut bytes = Vec::new();
            write_cell(cell, &mut bytes);
            let mut r = Reader {
                bytes: &bytes,
                pos: 0,
            };
            read_cell(&mut r, 1).map(drop)
        };
        assert!(decode(&cell).is_err());
        let ValueCell::Object(inner) = &cell else {
            unreachable!()
        };
        assert!(decode(&inner[0]).is_ok());
    }

    /// Decoding never panics; what decodes encodes to the same bytes, unless repeated
    /// deposit assets collapsed, and then it decodes again to itself.
    fn check_reencoding(bytes: &[u8]) -> Result<(), TestCaseError> {
        crate::tx::check_round_trip(bytes).map_err(TestCaseError::fail)
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: std::env::var("BLOCKSTM_PROPTEST_CASES")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(2000),
            ..ProptestConfig::default()
        })]

        #[test]
        fn arbitrary_bytes_decode_or_fail_cleanly(
            bytes in proptest::collection::vec(any::<u8>(), 0..400),
        ) {
            check_reencoding(&bytes)?;
        }

        /// Valid transactions with bytes replaced, removed or inserted.
        #[test]
        fn mutated_transactions_decode_or_fail_cleanly(
            which in 0usize..6,
            edits in proptest::collection::vec(
                (any::<prop::sample::Index>(), any::<u8>(), 0u8..3),
                1..4,
            ),
        ) {
            let mut bytes = every_kind()[which].to_wire();
            for (at, byte, op) in edits {
                let i = at.index(bytes.len().max(1));
                match op {
                    0 if !bytes.is_empty() => bytes[i] = byte,
                    1 if !bytes.is_empty() => {
                        bytes.remove(i);
                    }
                    _ => bytes.insert(i.min(bytes.len()), byte),
                }
            }
            check_reencoding(&bytes)?;
        }
    }
}
