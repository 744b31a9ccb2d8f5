//! The command the supervisor runs, built from what the user gave: an external program as written, or
//! the worker binary `watchdog-fetch` as the built-in download worker when the command is the bare
//! word `fetch`.

use std::ffi::OsString;

use super::options::{DownloadView, Supervised};

impl Supervised {
    /// `command` (program and arguments) as the user wrote it.
    pub fn program(command: &[OsString]) -> Option<Supervised> {
        let program = command.first()?;
        Some(Supervised {
            program: program.clone(),
            args: command[1..].to_vec(),
            arg0: None,
            name: program.to_string_lossy().into_owned(),
            argv: command.to_vec(),
            download: None,
        })
    }

    /// The built-in download worker for `fetch ARGS...` (`command`, whose options the caller checked):
    /// `watchdog-fetch` beside watchdog's executable with the worker's hidden first argument. `Err`
    /// is the line that says it is missing.
    pub fn fetch_worker(command: &[OsString], view: DownloadView) -> Result<Supervised, String> {
        let exe = crate::fetch::worker_binary()?;
        let mut args = vec![OsString::from(crate::fetch::WORKER_ARG)];
        args.extend_from_slice(command.get(1..).unwrap_or_default());
        Ok(Supervised {
            program: exe.into_os_string(),
            args,
            arg0: Some(OsString::from(crate::fetch::WORKER_BINARY)),
            name: command
                .first()
                .map_or_else(|| "fetch".to_string(), |p| p.to_string_lossy().into_owned()),
            argv: command.to_vec(),
            download: Some(view),
        })
    }
}
