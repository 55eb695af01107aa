//! What an idle TLS connection keeps on the heap: chopin's [`Tls`] after a
//! handshake and one request, counted by a counting allocator.
//!
//! `scripts/idle-cost` measures resident memory per idle connection, which
//! is the heap plus what the allocator keeps around it; this counts the
//! heap alone, so the two together say whether a figure is rustls' state
//! or allocator overhead. The handshakes run in memory against rustls'
//! own client (no sockets), one connection after another, the servers'
//! states kept and the clients' dropped, as a server holding idle
//! connections keeps them.
//!
//! Usage: `cargo run --release --example tls_idle_heap -- [CONNECTIONS]`
//! (default 1,000). It prints one line: bytes and allocations live per
//! connection, and `size_of::<Tls>()`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::{Read, Write};
use std::path::Path;
use std::sync::atomic::{AtomicIsize, Ordering::Relaxed};
use std::sync::Arc;

use chopin::tls::{server_config, Received, Tls};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, ClientConnection, DigitallySignedStruct, SignatureScheme};

/// Counts the bytes and blocks live on the heap.
struct Counting;

static BYTES: AtomicIsize = AtomicIsize::new(0);
static BLOCKS: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call is passed straight to `System`, which upholds
// `GlobalAlloc`'s contract; the counters only add and subtract sizes. The
// counting is the reason for the example: no safe hook sees every
// allocation of rustls and its crypto provider.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        BYTES.fetch_add(layout.size() as isize, Relaxed);
        BLOCKS.fetch_add(1, Relaxed);
        // SAFETY: the caller's layout, as `GlobalAlloc::alloc` requires.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        BYTES.fetch_sub(layout.size() as isize, Relaxed);
        BLOCKS.fetch_sub(1, Relaxed);
        // SAFETY: `ptr` came from `alloc` above with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Accepts the server's certificate unchecked: only memory is measured.
#[derive(Debug)]
struct AnyCertificate(Vec<SignatureScheme>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn verify_tls13_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.clone()
    }
}

/// Moves the client's pending records through the server and the server's
/// answer back; returns the plaintext the server received.
fn exchange(client: &mut ClientConnection, server: &mut Tls) -> Vec<u8> {
    let mut cipher = server.kept().to_vec();
    while client.wants_write() {
        client.write_tls(&mut cipher).expect("client records");
    }
    let mut plain = vec![0; cipher.len()];
    let mut out = Vec::new();
    let (got, received) = server.receive(&mut cipher, &mut plain, &mut out);
    assert_eq!(received, Received::Open, "the server refused the client");
    let mut from_server = &out[..];
    while !from_server.is_empty() {
        client.read_tls(&mut from_server).expect("server records");
        client
            .process_new_packets()
            .expect("the client refused the server");
    }
    plain.truncate(got);
    plain
}

fn main() {
    let connections: usize = std::env::args()
        .nth(1)
        .map(|n| n.parse().expect("CONNECTIONS: a count"))
        .unwrap_or(1000);
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = server_config(
        &root.join("tests/certs/rsa.crt"),
        &root.join("tests/certs/rsa-pkcs8.key"),
    )
    .expect("the test certificate");
    let provider = config.crypto_provider().clone();
    let schemes = provider
        .signature_verification_algorithms
        .supported_schemes();
    let client_config = Arc::new(
        ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .expect("TLS 1.3")
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate(schemes)))
            .with_no_client_auth(),
    );
    let name = ServerName::try_from("localhost").expect("a server name");

    let mut servers = Vec::with_capacity(connections);
    let (bytes_before, blocks_before) = (BYTES.load(Relaxed), BLOCKS.load(Relaxed));
    for _ in 0..connections {
        let mut server = Tls::new(&config).expect("a server connection");
        let mut client =
            ClientConnection::new(client_config.clone(), name.clone()).expect("a client");
        while client.is_handshaking() || server.handshaking() {
            exchange(&mut client, &mut server);
        }
        let request = b"GET /plaintext HTTP/1.1\r\nHost: localhost\r\n\r\n";
        client.writer().write_all(request).expect("the request");
        assert_eq!(exchange(&mut client, &mut server), request);
        let mut answer = Vec::new();
        server
            .send(
                b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
                false,
                &mut answer,
            )
            .expect("the answer");
        client.read_tls(&mut &answer[..]).expect("answer records");
        client.process_new_packets().expect("the answer");
        let mut read = [0; 64];
        assert!(client.reader().read(&mut read).expect("the answer's bytes") > 0);
        servers.push(server);
    }
    let bytes = (BYTES.load(Relaxed) - bytes_before) as f64 / connections as f64;
    let blocks = (BLOCKS.load(Relaxed) - blocks_before) as f64 / connections as f64;
    // The Vec holding the boxes is part of the count, as a server's own
    // table of connections would be: 8 bytes each.
    println!(
        "connections {connections} heap_bytes_per_connection {bytes:.0} \
         heap_blocks_per_connection {blocks:.1} size_of_tls {}",
        std::mem::size_of::<Tls>()
    );
    drop(servers);
}
