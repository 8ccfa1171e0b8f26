//! Saga steps on the `HttpServer` capability: put a file (undo: restore
//! what was there, or remove it) and remove a file (undo: put it back).
//! For the small files Harmony renders (iPXE scripts, kickstarts,
//! Ignition): the previous contents travel in the step log as undo data.

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

use crate::domain::{
    HttpServer, Prepared, RelativePath, Step, StepContext, StepError, StepKey, Topology, UndoData,
};

/// What a path held before a step acted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Previous {
    /// Base64 of the old contents; `None` when the file was absent.
    contents: Option<String>,
}

impl Previous {
    fn undo_data(old: Option<&[u8]>) -> Result<UndoData, StepError> {
        Ok(UndoData::of(&Previous {
            contents: old.map(|b| STANDARD.encode(b)),
        })?)
    }
}

/// Restores `undo` at `path` (the old contents, or no file), provided the
/// path still holds what the step left there (`written`; `None` for a
/// removal): a file changed since by someone else is left alone.
async fn restore<T: HttpServer>(
    site: &T,
    path: &RelativePath,
    written: Option<&[u8]>,
    undo: &UndoData,
) -> Result<(), StepError> {
    let previous: Previous = undo.decode()?;
    let now = site.read_file(path).await?;
    let old = previous
        .contents
        .as_deref()
        .map(|b64| STANDARD.decode(b64))
        .transpose()
        .map_err(|e| StepError::new(format!("undo data of {path}: {e}")))?;
    if now.as_deref() == old.as_deref() {
        return Ok(());
    }
    if now.as_deref() != written {
        return Err(StepError::new(format!(
            "{path} changed since this step acted; left as it is"
        )));
    }
    match old {
        None => site.remove_file(path).await?,
        Some(old) => site.put_file(path, &old).await?,
    };
    Ok(())
}

/// Puts `contents` at `path` under the HTTP root.
#[derive(Clone, PartialEq, Eq)]
pub struct PutFile {
    pub path: RelativePath,
    pub contents: Vec<u8>,
}

impl std::fmt::Debug for PutFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PutFile")
            .field("path", &self.path)
            .field("bytes", &self.contents.len())
            .finish()
    }
}

#[async_trait]
impl<T: Topology + HttpServer> Step<T> for PutFile {
    fn key(&self) -> StepKey {
        StepKey(format!("put {}", self.path))
    }

    async fn prepare(&self, ctx: StepContext<'_, T>) -> Result<Prepared, StepError> {
        let old = ctx.topology.read_file(&self.path).await?;
        if old.as_deref() == Some(&self.contents[..]) {
            return Ok(Prepared::Unchanged);
        }
        let verb = if old.is_some() { "replace" } else { "write" };
        Ok(Prepared::Change {
            description: format!("{verb} {} ({} bytes)", self.path, self.contents.len()),
            undo: Previous::undo_data(old.as_deref())?,
        })
    }

    async fn apply(&self, ctx: StepContext<'_, T>) -> Result<Option<String>, StepError> {
        ctx.topology.put_file(&self.path, &self.contents).await?;
        Ok(None)
    }

    async fn undo(&self, ctx: StepContext<'_, T>, undo: &UndoData) -> Result<(), StepError> {
        restore(ctx.topology, &self.path, Some(&self.contents), undo).await
    }
}

/// Removes `path` from the HTTP root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoveFile {
    pub path: RelativePath,
}

impl RemoveFile {
    /// The step a log entry's key names (`remove <path>`), to resume or
    /// undo a removal after the file is gone.
    pub fn from_key(key: &StepKey) -> Option<RemoveFile> {
        let path = key.0.strip_prefix("remove ")?.parse().ok()?;
        Some(RemoveFile { path })
    }
}

#[async_trait]
impl<T: Topology + HttpServer> Step<T> for RemoveFile {
    fn key(&self) -> StepKey {
        StepKey(format!("remove {}", self.path))
    }

    async fn prepare(&self, ctx: StepContext<'_, T>) -> Result<Prepared, StepError> {
        match ctx.topology.read_file(&self.path).await? {
            None => Ok(Prepared::Unchanged),
            Some(old) => Ok(Prepared::Change {
                description: format!("remove {}", self.path),
                undo: Previous::undo_data(Some(&old))?,
            }),
        }
    }

    async fn apply(&self, ctx: StepContext<'_, T>) -> Result<Option<String>, StepError> {
        ctx.topology.remove_file(&self.path).await?;
        Ok(None)
    }

    async fn undo(&self, ctx: StepContext<'_, T>, undo: &UndoData) -> Result<(), StepError> {
        restore(ctx.topology, &self.path, None, undo).await
    }
}
