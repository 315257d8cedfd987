//! `courier status`: the daemon on one screen (`GET /v1/status`), rendered by
//! [`render::render_status`], or its JSON with `--json`.

use super::{ClientOpts, Failure, render};

pub(super) async fn run(opts: &ClientOpts) -> Result<(), Failure> {
    let mut client = opts.client();
    let status = client.status().await.map_err(|e| opts.failure(e))?;
    opts.output(&status, render::render_status)
}
