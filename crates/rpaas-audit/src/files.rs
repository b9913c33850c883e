//! Reading an exported Windows file as text: UTF-8 (with or without a BOM) or UTF-16 with a
//! BOM, as `reg export` and Notepad write them.

use std::io::Read;
use std::path::Path;

use crate::error::FileError;

/// Files larger than this are refused: an applicationHost.config or a SCHANNEL export is a
/// few hundred KiB at most.
pub const FILE_LIMIT: u64 = 16 * 1024 * 1024;

/// Reads `path` (at most [`FILE_LIMIT`] bytes) and decodes it.
pub fn read_text(path: &Path) -> Result<String, FileError> {
    let f = std::fs::File::open(path).map_err(|source| FileError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let mut bytes = Vec::new();
    f.take(FILE_LIMIT + 1)
        .read_to_end(&mut bytes)
        .map_err(|source| FileError::Read {
            path: path.to_path_buf(),
            source,
        })?;
    if bytes.len() as u64 > FILE_LIMIT {
        return Err(FileError::TooLarge {
            path: path.to_path_buf(),
            limit: FILE_LIMIT,
        });
    }
    decode(&bytes).map_err(|reason| FileError::Encoding {
        path: path.to_path_buf(),
        reason,
    })
}

/// Decodes by BOM: UTF-16LE (`FF FE`), UTF-16BE (`FE FF`), UTF-8 (`EF BB BF`) or none (UTF-8;
/// invalid sequences, e.g. from a Windows-1252 `REGEDIT4` file, become U+FFFD).
pub fn decode(bytes: &[u8]) -> Result<String, &'static str> {
    let utf16 = |rest: &[u8], le: bool| -> Result<String, &'static str> {
        let pairs = rest.chunks_exact(2);
        if !pairs.remainder().is_empty() {
            return Err("UTF-16 with an odd number of bytes");
        }
        let units = pairs.map(|c| {
            if le {
                u16::from_le_bytes([c[0], c[1]])
            } else {
                u16::from_be_bytes([c[0], c[1]])
            }
        });
        char::decode_utf16(units)
            .collect::<Result<String, _>>()
            .map_err(|_| "invalid UTF-16")
    };
    if let Some(rest) = bytes.strip_prefix(&[0xFF, 0xFE]) {
        return utf16(rest, true);
    }
    if let Some(rest) = bytes.strip_prefix(&[0xFE, 0xFF]) {
        return utf16(rest, false);
    }
    let rest = bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]).unwrap_or(bytes);
    if rest.contains(&0) {
        return Err("NUL bytes: binary, or UTF-16 without a byte-order mark");
    }
    Ok(String::from_utf8_lossy(rest).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boms() {
        let mut le = vec![0xFF, 0xFE];
        le.extend(
            "Windows Registry ✓"
                .encode_utf16()
                .flat_map(u16::to_le_bytes),
        );
        assert_eq!(decode(&le).as_deref(), Ok("Windows Registry ✓"));
        let mut be = vec![0xFE, 0xFF];
        be.extend("abc".encode_utf16().flat_map(u16::to_be_bytes));
        assert_eq!(decode(&be).as_deref(), Ok("abc"));
        assert_eq!(decode(b"\xEF\xBB\xBF<x/>").as_deref(), Ok("<x/>"));
        assert_eq!(decode(b"plain").as_deref(), Ok("plain"));
        assert!(decode(b"a\0b\0").is_err());
        assert!(decode(&[0xFF, 0xFE, 0x41]).is_err());
        assert!(decode(&[0xFF, 0xFE, 0x00, 0xD8]).is_err(), "lone surrogate");
    }

    #[test]
    fn missing_and_huge_files_are_errors() {
        let dir = std::env::temp_dir().join(format!("rpaas-audit-files-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let e = read_text(&dir.join("missing.reg")).expect_err("missing");
        assert!(e.to_string().contains("missing.reg: cannot read"), "{e}");
        let big = dir.join("big.config");
        let f = std::fs::File::create(&big).expect("create");
        f.set_len(FILE_LIMIT + 10).expect("sparse file");
        let e = read_text(&big).expect_err("too large");
        assert!(e.to_string().contains("larger than"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
