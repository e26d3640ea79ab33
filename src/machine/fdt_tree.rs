//! A flattened device tree read into a tree of nodes, edited and written back: how kvmdbg
//! fills `/chosen` in a DTB the user supplies (`--dtb`), and how tests look into the DTB it
//! generates.
//!
//! Format: Devicetree Specification v0.4, chapter 5 "Flattened Devicetree (DTB) Format":
//! 5.2 the header (big-endian u32 fields, magic 0xd00dfeed), 5.3 the memory reservation block
//! (pairs of big-endian u64 ending with 0, 0), 5.4 the structure block (tokens FDT_BEGIN_NODE
//! 0x1 with a NUL-terminated name padded to 4 bytes, FDT_END_NODE 0x2, FDT_PROP 0x3 with
//! length, name offset and value padded to 4 bytes, FDT_NOP 0x4, FDT_END 0x9), 5.5 the strings
//! block. Written as version 17, last compatible version 16, as dtc writes.
//!
//! Owns the byte format only; what goes into `/chosen` is `boot`'s. Hostile input (any byte
//! string) gives an error, never a panic: every offset and length is checked, nesting is
//! bounded.

/// FDT header magic (DT spec 5.2).
const MAGIC: u32 = 0xd00d_feed;
/// Header size of versions 17 and later (10 u32 fields, DT spec 5.2).
const HEADER_LEN: usize = 40;
const FDT_BEGIN_NODE: u32 = 0x1;
const FDT_END_NODE: u32 = 0x2;
const FDT_PROP: u32 = 0x3;
const FDT_NOP: u32 = 0x4;
const FDT_END: u32 = 0x9;
/// Deepest node nesting accepted (real trees are a handful of levels deep; the bound keeps
/// recursion over hostile input finite).
pub const MAX_DEPTH: usize = 64;

/// Why a DTB cannot be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DtbError {
    #[error("{0} bytes is too short for a DTB header")]
    Short(usize),
    #[error("bad magic {0:#010x} (a DTB starts with 0xd00dfeed)")]
    Magic(u32),
    #[error("unsupported version {version} (last compatible {last_comp}); kvmdbg reads 16 and 17")]
    Version { version: u32, last_comp: u32 },
    #[error("{what} [{start:#x}, +{len:#x}) lies outside the blob ({total:#x} bytes)")]
    Bounds {
        what: &'static str,
        start: usize,
        len: usize,
        total: usize,
    },
    #[error("structure block at {offset:#x}: {what}")]
    Structure { offset: usize, what: String },
}

type Result<T> = std::result::Result<T, DtbError>;

/// One property: its name and raw value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Prop {
    pub name: String,
    pub value: Vec<u8>,
}

/// One node with its properties and children, in file order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Node {
    pub name: String,
    pub props: Vec<Prop>,
    pub children: Vec<Node>,
}

impl Node {
    /// The value of property `name`.
    pub fn prop(&self, name: &str) -> Option<&[u8]> {
        self.props
            .iter()
            .find(|p| p.name == name)
            .map(|p| &p.value[..])
    }

    /// A string property without its terminating NUL.
    pub fn prop_str(&self, name: &str) -> Option<&str> {
        let v = self.prop(name)?;
        std::str::from_utf8(v.strip_suffix(&[0]).unwrap_or(v)).ok()
    }

    /// A property of one or two big-endian cells read as a number.
    pub fn prop_u64(&self, name: &str) -> Option<u64> {
        let v = self.prop(name)?;
        match v.len() {
            4 => Some(u32::from_be_bytes(v.try_into().ok()?) as u64),
            8 => Some(u64::from_be_bytes(v.try_into().ok()?)),
            _ => None,
        }
    }

    /// Sets (replaces or appends) property `name`.
    pub fn set_prop(&mut self, name: &str, value: Vec<u8>) {
        match self.props.iter_mut().find(|p| p.name == name) {
            Some(p) => p.value = value,
            None => self.props.push(Prop {
                name: name.to_string(),
                value,
            }),
        }
    }

    /// Removes property `name`; whether it was there.
    pub fn remove_prop(&mut self, name: &str) -> bool {
        let before = self.props.len();
        self.props.retain(|p| p.name != name);
        self.props.len() != before
    }

    /// The child named exactly `name` (unit address included).
    pub fn child(&self, name: &str) -> Option<&Node> {
        self.children.iter().find(|c| c.name == name)
    }

    /// The child named `name`, appended if there is none.
    pub fn child_or_insert(&mut self, name: &str) -> &mut Node {
        let i = match self.children.iter().position(|c| c.name == name) {
            Some(i) => i,
            None => {
                self.children.push(Node {
                    name: name.to_string(),
                    ..Node::default()
                });
                self.children.len() - 1
            }
        };
        &mut self.children[i]
    }
}

/// A whole DTB.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tree {
    /// Memory reservation entries (address, size).
    pub reserved: Vec<(u64, u64)>,
    pub boot_cpuid_phys: u32,
    pub root: Node,
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn be64(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_be_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// A block of the blob, bounds-checked.
fn block<'a>(blob: &'a [u8], what: &'static str, start: u32, len: u32) -> Result<&'a [u8]> {
    let (start, len) = (start as usize, len as usize);
    start
        .checked_add(len)
        .and_then(|end| blob.get(start..end))
        .ok_or(DtbError::Bounds {
            what,
            start,
            len,
            total: blob.len(),
        })
}

impl Tree {
    /// Reads a DTB. Bytes after `totalsize` are ignored.
    pub fn parse(bytes: &[u8]) -> Result<Tree> {
        let field = |i: usize| be32(bytes, i * 4).ok_or(DtbError::Short(bytes.len()));
        let magic = field(0)?;
        if magic != MAGIC {
            return Err(DtbError::Magic(magic));
        }
        let (total, off_struct, off_strings, off_rsv) =
            (field(1)?, field(2)?, field(3)?, field(4)?);
        let (version, last_comp) = (field(5)?, field(6)?);
        if version < 16 || last_comp > 17 {
            return Err(DtbError::Version { version, last_comp });
        }
        let blob = block(bytes, "totalsize", 0, total)?;
        let size_strings = field(8)?;
        let size_struct = if version >= 17 {
            field(9)?
        } else {
            total.saturating_sub(off_struct)
        };
        let structure = block(blob, "structure block", off_struct, size_struct)?;
        let strings = block(blob, "strings block", off_strings, size_strings)?;
        Ok(Tree {
            reserved: reservations(blob, off_rsv as usize)?,
            boot_cpuid_phys: field(7)?,
            root: parse_structure(structure, strings)?,
        })
    }

    /// The node at an absolute path such as `/chosen` (`/` is the root).
    pub fn node(&self, path: &str) -> Option<&Node> {
        path.split('/')
            .filter(|c| !c.is_empty())
            .try_fold(&self.root, |n, c| n.child(c))
    }

    /// The node at `path`, creating missing nodes on the way.
    pub fn node_or_insert(&mut self, path: &str) -> &mut Node {
        path.split('/')
            .filter(|c| !c.is_empty())
            .fold(&mut self.root, |n, c| n.child_or_insert(c))
    }

    /// Writes the DTB (version 17), strings shared between properties of the same name.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut strings: Vec<u8> = Vec::new();
        let mut structure: Vec<u8> = Vec::new();
        write_node(&self.root, &mut structure, &mut strings);
        structure.extend_from_slice(&FDT_END.to_be_bytes());
        let mut rsv = Vec::new();
        for &(addr, size) in self.reserved.iter().chain([(0, 0)].iter()) {
            rsv.extend_from_slice(&addr.to_be_bytes());
            rsv.extend_from_slice(&size.to_be_bytes());
        }
        let off_rsv = HEADER_LEN;
        let off_struct = off_rsv + rsv.len();
        let off_strings = off_struct + structure.len();
        let total = off_strings + strings.len();
        let header = [
            MAGIC,
            total as u32,
            off_struct as u32,
            off_strings as u32,
            off_rsv as u32,
            17,
            16,
            self.boot_cpuid_phys,
            strings.len() as u32,
            structure.len() as u32,
        ];
        let mut out = Vec::with_capacity(total);
        header
            .iter()
            .for_each(|f| out.extend_from_slice(&f.to_be_bytes()));
        out.extend_from_slice(&rsv);
        out.extend_from_slice(&structure);
        out.extend_from_slice(&strings);
        out
    }
}

fn reservations(blob: &[u8], mut at: usize) -> Result<Vec<(u64, u64)>> {
    let mut out = Vec::new();
    loop {
        let entry = be64(blob, at).zip(be64(blob, at + 8));
        let (addr, size) = entry.ok_or(DtbError::Bounds {
            what: "memory reservation block",
            start: at,
            len: 16,
            total: blob.len(),
        })?;
        if addr == 0 && size == 0 {
            return Ok(out);
        }
        out.push((addr, size));
        at += 16;
    }
}

/// A NUL-terminated string at `at` in `b`, as UTF-8 (node and property names are ASCII).
fn cstr(b: &[u8], at: usize) -> Option<&str> {
    let rest = b.get(at..)?;
    let len = rest.iter().position(|&c| c == 0)?;
    std::str::from_utf8(&rest[..len]).ok()
}

fn parse_structure(s: &[u8], strings: &[u8]) -> Result<Node> {
    let err = |offset: usize, what: String| DtbError::Structure { offset, what };
    let mut stack: Vec<Node> = Vec::new();
    let mut root: Option<Node> = None;
    let mut at = 0usize;
    loop {
        let token = be32(s, at).ok_or_else(|| err(at, "ends without FDT_END".into()))?;
        let here = at;
        at += 4;
        match token {
            FDT_BEGIN_NODE => {
                let name = cstr(s, at).ok_or_else(|| err(here, "unterminated node name".into()))?;
                if root.is_some() {
                    return Err(err(here, "a second root node".into()));
                }
                if stack.is_empty() && !name.is_empty() {
                    return Err(err(here, format!("root node named {name:?}")));
                }
                if stack.len() >= MAX_DEPTH {
                    return Err(err(here, format!("nodes nested deeper than {MAX_DEPTH}")));
                }
                at = align4(at + name.len() + 1);
                stack.push(Node {
                    name: name.to_string(),
                    ..Node::default()
                });
            }
            FDT_END_NODE => {
                let node = stack
                    .pop()
                    .ok_or_else(|| err(here, "FDT_END_NODE outside any node".into()))?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(node),
                    None => root = Some(node),
                }
            }
            FDT_PROP => {
                let (len, nameoff) = be32(s, at)
                    .zip(be32(s, at + 4))
                    .ok_or_else(|| err(here, "truncated property".into()))?;
                let value = s
                    .get(at + 8..at + 8 + len as usize)
                    .ok_or_else(|| err(here, format!("property value of {len} bytes overruns")))?;
                let name = cstr(strings, nameoff as usize)
                    .ok_or_else(|| err(here, format!("bad property name offset {nameoff:#x}")))?;
                let node = stack
                    .last_mut()
                    .ok_or_else(|| err(here, "property outside any node".into()))?;
                node.props.push(Prop {
                    name: name.to_string(),
                    value: value.to_vec(),
                });
                at = align4(at + 8 + len as usize);
            }
            FDT_NOP => {}
            FDT_END => {
                if !stack.is_empty() {
                    return Err(err(here, "FDT_END inside a node".into()));
                }
                return root.ok_or_else(|| err(here, "no root node".into()));
            }
            t => return Err(err(here, format!("unknown token {t:#x}"))),
        }
    }
}

fn string_offset(strings: &mut Vec<u8>, name: &str) -> u32 {
    let mut at = 0;
    while at < strings.len() {
        let end = at + strings[at..].iter().position(|&c| c == 0).unwrap_or(0);
        if &strings[at..end] == name.as_bytes() {
            return at as u32;
        }
        at = end + 1;
    }
    let off = strings.len() as u32;
    strings.extend_from_slice(name.as_bytes());
    strings.push(0);
    off
}

fn pad4(out: &mut Vec<u8>) {
    out.resize(align4(out.len()), 0);
}

fn write_node(node: &Node, out: &mut Vec<u8>, strings: &mut Vec<u8>) {
    out.extend_from_slice(&FDT_BEGIN_NODE.to_be_bytes());
    out.extend_from_slice(node.name.as_bytes());
    out.push(0);
    pad4(out);
    for p in &node.props {
        out.extend_from_slice(&FDT_PROP.to_be_bytes());
        out.extend_from_slice(&(p.value.len() as u32).to_be_bytes());
        out.extend_from_slice(&string_offset(strings, &p.name).to_be_bytes());
        out.extend_from_slice(&p.value);
        pad4(out);
    }
    for c in &node.children {
        write_node(c, out, strings);
    }
    out.extend_from_slice(&FDT_END_NODE.to_be_bytes());
}

#[cfg(test)]
#[path = "fdt_tree_tests.rs"]
mod tests;
