//! The sealed tables of the redb backend: every row of `endpoints` and `channels` (the rows
//! that hold secrets, passwords and keys) is sealed at the byte layer with the journal's
//! [`KeyRing`] (see [`crate::store::seal`]), the row's table and key as associated data. The
//! rules above see the plain postcard bytes; a row that fails to open is an error naming its
//! table and key, never a silently changed value. Also here: sealing every clear row (the
//! upgrade to schema 5) and, at each open, resealing the rows sealed under an older key.

use std::borrow::Cow;
use std::sync::Arc;

use redb::{ReadableTable, Table, TableDefinition};

use super::tables::{ById, se};
use super::{CHANNELS, ENDPOINTS};
use crate::store::StoreError;
use crate::store::seal::{KeyRing, OpenError, sealed_by};

type Bytes = &'static [u8];

/// The code of a sealed row that does not open (a changed byte, a row moved).
pub const ROW_CORRUPT: &str = "JOURNAL_ROW_CORRUPT";
/// The code of a row sealed under a key the ring does not hold.
pub const KEY_MISMATCH: &str = "MASTER_KEY_MISMATCH";

/// The sealed tables, with the name that is their rows' associated data.
pub(crate) const SEALED_TABLES: [(TableDefinition<'static, ById, Bytes>, &str); 2] =
    [(ENDPOINTS, ENDPOINTS_AD), (CHANNELS, CHANNELS_AD)];
/// The associated-data names of the two tables.
pub(crate) const ENDPOINTS_AD: &str = "endpoints";
pub(crate) const CHANNELS_AD: &str = "channels";

/// How the rows of the sealed tables are stored in one journal.
#[derive(Clone)]
pub(crate) enum RowSeal {
    /// Sealed under the ring (schema 5 on).
    Keys(Arc<KeyRing>),
    /// In clear: a journal of an older schema opened read-only (it cannot be upgraded).
    Clear,
}

/// The error of a row that does not open.
fn refused(table: &str, key: &str, e: OpenError) -> StoreError {
    match e {
        OpenError::UnknownKey(id) => StoreError::Unavailable(format!(
            "{KEY_MISMATCH}: the {table} row {key:?} is sealed under master key {id}, which is not among the keys given; give the master key the journal was sealed with (restore it from the backup of master.key; see courier explain {KEY_MISMATCH})"
        )),
        e => StoreError::Corrupt(format!(
            "{ROW_CORRUPT}: the {table} row {key:?} does not open: {e}; restore the journal from a backup or delete and re-create the {table} entry (see courier explain {ROW_CORRUPT})"
        )),
    }
}

impl RowSeal {
    /// The plain bytes of the row at `key` of `table`.
    pub(crate) fn open<'a>(
        &self,
        table: &str,
        key: &str,
        row: &'a [u8],
    ) -> Result<Cow<'a, [u8]>, StoreError> {
        match self {
            RowSeal::Clear => Ok(Cow::Borrowed(row)),
            RowSeal::Keys(ring) => ring
                .open(table, key.as_bytes(), row)
                .map(|o| Cow::Owned(o.plain))
                .map_err(|e| refused(table, key, e)),
        }
    }

    /// The stored bytes of the plain row at `key` of `table`.
    pub(crate) fn seal<'a>(&self, table: &str, key: &str, plain: &'a [u8]) -> Cow<'a, [u8]> {
        match self {
            RowSeal::Clear => Cow::Borrowed(plain),
            RowSeal::Keys(ring) => Cow::Owned(ring.seal(table, key.as_bytes(), plain)),
        }
    }
}

/// The plain row at `k`, passed to `f`.
pub(crate) fn get<T>(
    t: &impl ReadableTable<ById, Bytes>,
    table: &str,
    seal: &RowSeal,
    k: &str,
    f: impl FnOnce(&[u8]) -> T,
) -> Result<Option<T>, StoreError> {
    match t.get(k).map_err(se)? {
        Some(v) => Ok(Some(f(&seal.open(table, k, v.value())?))),
        None => Ok(None),
    }
}

/// Every plain row, by key.
pub(crate) fn each(
    t: &impl ReadableTable<ById, Bytes>,
    table: &str,
    seal: &RowSeal,
    mut f: impl FnMut(&str, &[u8]) -> Result<bool, StoreError>,
) -> Result<(), StoreError> {
    for row in t.iter().map_err(se)? {
        let (k, v) = row.map_err(se)?;
        let plain = seal.open(table, k.value(), v.value())?;
        if !f(k.value(), &plain)? {
            break;
        }
    }
    Ok(())
}

/// Stores the plain row `v` at `k`, sealed.
pub(crate) fn put(
    t: &mut Table<'_, ById, Bytes>,
    table: &str,
    seal: &RowSeal,
    k: &str,
    v: &[u8],
) -> Result<(), StoreError> {
    t.insert(k, seal.seal(table, k, v).as_ref()).map_err(se)?;
    Ok(())
}

/// Seals every clear row of the sealed tables (the upgrade of a journal of schema 4 or older,
/// in the open's write transaction); answers how many. A row the ring opens already is left
/// as it is (a clear row never opens: it does not carry the tag).
pub(crate) fn seal_all(tx: &redb::WriteTransaction, ring: &KeyRing) -> Result<u64, StoreError> {
    let mut n = 0;
    for (def, name) in SEALED_TABLES {
        let mut t = tx.open_table(def).map_err(se)?;
        let mut rows = Vec::new();
        for row in t.iter().map_err(se)? {
            let (k, v) = row.map_err(se)?;
            if ring.open(name, k.value().as_bytes(), v.value()).is_ok() {
                continue;
            }
            rows.push((k.value().to_string(), v.value().to_vec()));
        }
        for (k, v) in rows {
            t.insert(k.as_str(), ring.seal(name, k.as_bytes(), &v).as_slice())
                .map_err(se)?;
            n += 1;
        }
    }
    Ok(n)
}

/// Opens every sealed row (so a missing key or a changed row refuses the open, naming the
/// row) and reseals under the ring's first key each row sealed under another; answers how many
/// were resealed. Runs in the open's write transaction: all or none are resealed.
pub(crate) fn check_and_reseal(
    tx: &redb::WriteTransaction,
    ring: &KeyRing,
) -> Result<u64, StoreError> {
    let mut n = 0;
    for (def, name) in SEALED_TABLES {
        let mut t = tx.open_table(def).map_err(se)?;
        let mut stale = Vec::new();
        for row in t.iter().map_err(se)? {
            let (k, v) = row.map_err(se)?;
            let opened = ring
                .open(name, k.value().as_bytes(), v.value())
                .map_err(|e| refused(name, k.value(), e))?;
            if opened.stale {
                stale.push((k.value().to_string(), opened.plain));
            }
        }
        for (k, plain) in stale {
            t.insert(k.as_str(), ring.seal(name, k.as_bytes(), &plain).as_slice())
                .map_err(se)?;
            n += 1;
        }
    }
    Ok(n)
}

/// The first row of the sealed tables sealed under a key the ring does not hold, as the
/// error a read-only open answers (it cannot reseal, and it opens rows only when asked).
pub(crate) fn check_keys(tx: &redb::ReadTransaction, ring: &KeyRing) -> Result<(), StoreError> {
    let known = ring.ids();
    for (def, name) in SEALED_TABLES {
        let t = match tx.open_table(def) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => continue,
            Err(e) => return Err(se(e)),
        };
        for row in t.iter().map_err(se)? {
            let (k, v) = row.map_err(se)?;
            if let Some(id) = sealed_by(v.value())
                && !known.contains(&id)
            {
                return Err(refused(name, k.value(), OpenError::UnknownKey(id)));
            }
        }
    }
    Ok(())
}
