//! Using the typed admin client: create an endpoint, send one event, read the endpoint back.
//!
//! ```text
//! courier serve --allow-http &
//! cargo run --example client -- ./courier.sock http://127.0.0.1:9000/hook
//! ```

use std::process::ExitCode;

use courier::client::{Client, Error, EventOptions};
use courier::views::EndpointUpdate;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let socket = args.next().unwrap_or_else(|| "./courier.sock".into());
    let url = args
        .next()
        .unwrap_or_else(|| "http://127.0.0.1:9000/hook".into());
    match run(&socket, url).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(Error::Api(e)) => {
            let (code, message) = e
                .error
                .as_ref()
                .map_or(("?", "no error body"), |d| (&d.code, &d.message));
            eprintln!("refused: HTTP {} {code}: {message}", e.status);
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(69)
        }
    }
}

async fn run(socket: &str, url: String) -> Result<(), Error> {
    // One connection, kept alive for every call below.
    let mut client = Client::unix(socket);
    let update = EndpointUpdate {
        url: Some(url),
        timeout: Some("2s".into()),
        ..EndpointUpdate::default()
    };
    let saved = client.put_endpoint("example", &update).await?;
    println!(
        "{} endpoint {} -> {}",
        if saved.created { "created" } else { "updated" },
        saved.view.id,
        saved.view.url
    );
    let accepted = client
        .send_event(
            "example",
            br#"{"hello":"world"}"#.as_slice().into(),
            EventOptions {
                event_type: Some("example.hello"),
                ..EventOptions::default()
            },
        )
        .await?;
    println!("accepted {} seq {}", accepted.id, accepted.seq);
    let view = client.endpoint("example").await?;
    println!("state {} backlog {}", view.state, view.backlog);
    Ok(())
}
