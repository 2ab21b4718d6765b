//! The project's module container: sBPF bytecode in a minimal ELF64 file.
//!
//! TOS accepts only ELF files as contract modules. The Solana toolchain's sBPF ELF files
//! carry program headers and call syscalls through relocations; assembled bytecode calls
//! them by the hash of their name. The container holds such bytecode as it is: a
//! little-endian ELF64 shared object for machine `EM_SBPF` with no program headers and
//! three sections, the null section, `.text` (the instructions, at file offset 64, which
//! is also its address and the entry point) and `.shstrtab` (the section names). A file
//! with program headers is left to the toolchain's loader.

/// `e_machine` of sBPF.
const EM_SBPF: u16 = 263;
/// `e_type`: a shared object, as sBPF programs are.
const ET_DYN: u16 = 3;
const SHT_PROGBITS: u32 = 1;
const SHT_STRTAB: u32 = 3;
/// `.text` is allocated and executable.
const SHF_ALLOC_EXECINSTR: u64 = 0x2 | 0x4;
const HEADER_SIZE: usize = 64;
const SECTION_HEADER_SIZE: usize = 64;
const NAMES: &[u8] = b"\0.text\0.shstrtab\0";

fn put16(out: &mut Vec<u8>, n: u16) {
    out.extend_from_slice(&n.to_le_bytes());
}

fn put32(out: &mut Vec<u8>, n: u32) {
    out.extend_from_slice(&n.to_le_bytes());
}

fn put64(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(&n.to_le_bytes());
}

#[allow(clippy::too_many_arguments)]
fn section_header(
    out: &mut Vec<u8>,
    name: u32,
    kind: u32,
    flags: u64,
    addr: u64,
    offset: u64,
    size: u64,
    align: u64,
) {
    put32(out, name);
    put32(out, kind);
    put64(out, flags);
    put64(out, addr);
    put64(out, offset);
    put64(out, size);
    put32(out, 0); // link
    put32(out, 0); // info
    put64(out, align);
    put64(out, 0); // entry size
}

/// `text` (sBPF instructions) in the container.
pub fn container(text: &[u8]) -> Vec<u8> {
    let text_offset = HEADER_SIZE;
    let names_offset = text_offset + text.len();
    let headers_offset = (names_offset + NAMES.len()).div_ceil(8) * 8;
    let mut out = Vec::with_capacity(headers_offset + 3 * SECTION_HEADER_SIZE);
    // The file header.
    out.extend_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1, 1, 0]);
    out.extend_from_slice(&[0; 8]);
    put16(&mut out, ET_DYN);
    put16(&mut out, EM_SBPF);
    put32(&mut out, 1); // version
    put64(&mut out, text_offset as u64); // entry
    put64(&mut out, 0); // program headers: none
    put64(&mut out, headers_offset as u64);
    put32(&mut out, 0); // flags: sBPF version 0
    put16(&mut out, HEADER_SIZE as u16);
    put16(&mut out, 56); // program header size
    put16(&mut out, 0); // program header count
    put16(&mut out, SECTION_HEADER_SIZE as u16);
    put16(&mut out, 3); // sections
    put16(&mut out, 2); // the names' section
    out.extend_from_slice(text);
    out.extend_from_slice(NAMES);
    out.resize(headers_offset, 0);
    section_header(&mut out, 0, 0, 0, 0, 0, 0, 0);
    section_header(
        &mut out,
        1,
        SHT_PROGBITS,
        SHF_ALLOC_EXECINSTR,
        text_offset as u64,
        text_offset as u64,
        text.len() as u64,
        8,
    );
    section_header(
        &mut out,
        7,
        SHT_STRTAB,
        0,
        0,
        names_offset as u64,
        NAMES.len() as u64,
        1,
    );
    out
}

fn read16(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(bytes.get(at..at + 2)?.try_into().ok()?))
}

fn read32(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

fn read64(bytes: &[u8], at: usize) -> Option<usize> {
    let n = u64::from_le_bytes(bytes.get(at..at + 8)?.try_into().ok()?);
    usize::try_from(n).ok()
}

/// The `.text` of a container; `Ok(None)` for an ELF with program headers (the
/// toolchain's); `Err` for a file that is neither.
pub fn container_text(module: &[u8]) -> Result<Option<&[u8]>, String> {
    let malformed = || "malformed ELF file".to_owned();
    if module.len() < HEADER_SIZE || module[..4] != *b"\x7fELF" {
        return Err("not an ELF file".to_owned());
    }
    if module[4] != 2 || module[5] != 1 {
        return Err("not a little-endian 64-bit ELF file".to_owned());
    }
    if read16(module, 56).ok_or_else(malformed)? != 0 {
        return Ok(None);
    }
    let headers = read64(module, 40).ok_or_else(malformed)?;
    let count = usize::from(read16(module, 60).ok_or_else(malformed)?);
    let names_index = usize::from(read16(module, 62).ok_or_else(malformed)?);
    if read16(module, 58) != Some(SECTION_HEADER_SIZE as u16) || names_index >= count {
        return Err(malformed());
    }
    let section = |i: usize| -> Option<(u32, usize, usize)> {
        let at = headers.checked_add(i.checked_mul(SECTION_HEADER_SIZE)?)?;
        let name = read32(module, at)?;
        let offset = read64(module, at + 24)?;
        let size = read64(module, at + 32)?;
        module.get(offset..offset.checked_add(size)?)?;
        Some((name, offset, size))
    };
    let (_, names_offset, names_size) = section(names_index).ok_or_else(malformed)?;
    let names = &module[names_offset..names_offset + names_size];
    for i in 0..count {
        let (name, offset, size) = section(i).ok_or_else(malformed)?;
        let name = usize::try_from(name).map_err(|_| malformed())?;
        if names.get(name..name + 6) == Some(b".text\0") {
            return Ok(Some(&module[offset..offset + size]));
        }
    }
    Err("an ELF file without a .text section".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_container_holds_its_text() {
        let text: Vec<u8> = (0..48).collect();
        let module = container(&text);
        assert_eq!(&module[..4], b"\x7fELF");
        assert_eq!(container_text(&module).unwrap(), Some(&text[..]));
    }

    #[test]
    fn anything_else_is_refused_without_a_panic() {
        assert!(container_text(b"\x7fELF").is_err());
        assert!(container_text(&[0; 100]).is_err());
        let module = container(&[1; 16]);
        for len in 0..module.len() {
            let _ = container_text(&module[..len]);
        }
        for i in 0..module.len() {
            let mut bent = module.clone();
            bent[i] ^= 0xff;
            let _ = container_text(&bent);
        }
        // Program headers: the toolchain's format.
        let mut toolchain = module.clone();
        toolchain[56] = 1;
        assert_eq!(container_text(&toolchain).unwrap(), None);
    }
}
