//! TLS on `--tls-port`, through rustls' own client over a blocking socket:
//! the handshake with each shipped key (RSA and ECDSA, in PKCS#8, PKCS#1
//! and SEC1), the posture HttpArena probes (TLS 1.3 only, an AEAD suite,
//! ALPN `http/1.1` or none), what happens to clients the server refuses
//! (TLS 1.2 only, h2 only, plain HTTP, garbage, a stalled handshake), the
//! routes over TLS (GET /json/{count}, POST /echo up to --max-body through
//! small socket buffers, pipelined requests), plain HTTP beside it, and the
//! binary's start-up failures for a missing or bad certificate or key.

mod common;

use std::io::{self, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chopin::{Config, Flavour, Server};
use common::*;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    AlertDescription, CipherSuite, ClientConfig, ClientConnection, DigitallySignedStruct,
    ProtocolVersion, SignatureScheme, StreamOwned,
};

const CERTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/certs");
const DATASET: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/dataset.json");
const BIN: &str = env!("CARGO_BIN_EXE_chopin");

/// The name both shipped certificates carry (SAN `DNS:localhost,
/// IP:127.0.0.1`; `openssl x509 -text`).
const SERVER_NAME: &str = "localhost";

/// HttpArena's three TLS 1.3 AEAD suites, the only ones the server offers.
const AEAD_SUITES: [CipherSuite; 3] = [
    CipherSuite::TLS13_AES_128_GCM_SHA256,
    CipherSuite::TLS13_AES_256_GCM_SHA384,
    CipherSuite::TLS13_CHACHA20_POLY1305_SHA256,
];

/// A certificate and the key that goes with it, as file names in tests/certs.
#[derive(Clone, Copy, Debug)]
struct Pair {
    cert: &'static str,
    key: &'static str,
}

const RSA_PKCS8: Pair = Pair {
    cert: "rsa.crt",
    key: "rsa-pkcs8.key",
};
const RSA_PKCS1: Pair = Pair {
    cert: "rsa.crt",
    key: "rsa-pkcs1.key",
};
const EC_PKCS8: Pair = Pair {
    cert: "ec.crt",
    key: "ec-pkcs8.key",
};
const EC_SEC1: Pair = Pair {
    cert: "ec.crt",
    key: "ec-sec1.key",
};

fn cert_path(name: &str) -> PathBuf {
    PathBuf::from(CERTS).join(name)
}

/// The crypto provider the server is built with, for the client too
/// (rustls marks ring's default provider deprecated: it has no
/// post-quantum key exchange, which neither side offers here).
#[cfg_attr(feature = "ring", allow(deprecated))]
fn provider() -> CryptoProvider {
    #[cfg(feature = "aws-lc-rs")]
    return rustls::crypto::aws_lc_rs::default_provider();
    #[cfg(all(feature = "ring", not(feature = "aws-lc-rs")))]
    return rustls::crypto::ring::default_provider();
}

/// Trusts exactly one certificate, the one the server was given.
///
/// Why not rustls' WebPKI verifier with the certificate as a root: the
/// shipped certificates are self-signed with `CA:TRUE`, and webpki refuses a
/// CA certificate as the end entity (`CaUsedAsEndEntity`). Pinning checks
/// what matters here: the server presents this certificate, and its
/// handshake signature verifies with this certificate's key, so the server
/// holds the matching private key.
#[derive(Debug)]
struct Pinned {
    cert: CertificateDer<'static>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        assert_eq!(server_name.to_str(), SERVER_NAME);
        if end_entity.as_ref() == self.cert.as_ref() && intermediates.is_empty() {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::UnknownIssuer,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// ALPN protocol names, in the client's order of preference.
type Protocols = &'static [&'static [u8]];

/// What a client offers.
#[derive(Clone, Copy)]
struct Offer {
    /// Which certificate it trusts (tests/certs name).
    trust: &'static str,
    /// TLS 1.2 only, instead of rustls' default (1.3 and 1.2).
    tls12_only: bool,
    alpn: Protocols,
}

impl Offer {
    fn trusting(cert: &'static str) -> Offer {
        Offer {
            trust: cert,
            tls12_only: false,
            alpn: &[],
        }
    }

    fn alpn(self, alpn: Protocols) -> Offer {
        Offer { alpn, ..self }
    }

    fn tls12_only(self) -> Offer {
        Offer {
            tls12_only: true,
            ..self
        }
    }

    fn config(&self) -> Arc<ClientConfig> {
        let provider = Arc::new(provider());
        let cert = CertificateDer::from_pem_file(cert_path(self.trust))
            .unwrap_or_else(|e| panic!("read {}: {e:?}", self.trust));
        let versions: &[&rustls::SupportedProtocolVersion] = if self.tls12_only {
            &[&rustls::version::TLS12]
        } else {
            rustls::DEFAULT_VERSIONS
        };
        let mut config = ClientConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(versions)
            .unwrap()
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Pinned { cert, provider }))
            .with_no_client_auth();
        config.alpn_protocols = self.alpn.iter().map(|p| p.to_vec()).collect();
        Arc::new(config)
    }
}

/// A TLS client connection over a blocking socket, its answers read by the
/// tests' one [`Reader`].
struct TlsConn {
    io: Reader<StreamOwned<ClientConnection, TcpStream>>,
}

/// Socket buffer sizes for the client socket, `None` for the system's.
#[derive(Clone, Copy, Default)]
struct Buffers(Option<usize>);

fn tcp(addr: SocketAddr, buffers: Buffers) -> TcpStream {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        None,
    )
    .unwrap();
    if let Some(size) = buffers.0 {
        // Before connect, so the window the handshake advertises is small too.
        socket.set_recv_buffer_size(size).unwrap();
        socket.set_send_buffer_size(size).unwrap();
    }
    socket
        .connect_timeout(&addr.into(), Duration::from_secs(5))
        .unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
    let stream: TcpStream = socket.into();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
        .set_write_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.set_nodelay(true).unwrap();
    stream
}

/// The rustls error inside an I/O error from `complete_io`, if that is what
/// it is.
fn rustls_error(e: io::Error) -> Result<rustls::Error, io::Error> {
    if e.get_ref().is_some_and(|inner| inner.is::<rustls::Error>()) {
        Ok(*e.into_inner().unwrap().downcast::<rustls::Error>().unwrap())
    } else {
        Err(e)
    }
}

impl TlsConn {
    /// Connects and completes the handshake; a handshake the server refuses
    /// is the rustls error the client saw.
    fn handshake(addr: SocketAddr, offer: Offer) -> Result<TlsConn, rustls::Error> {
        TlsConn::handshake_with(addr, offer, Buffers::default())
    }

    fn handshake_with(
        addr: SocketAddr,
        offer: Offer,
        buffers: Buffers,
    ) -> Result<TlsConn, rustls::Error> {
        let mut sock = tcp(addr, buffers);
        let name = ServerName::try_from(SERVER_NAME).unwrap();
        let mut conn = ClientConnection::new(offer.config(), name).unwrap();
        while conn.is_handshaking() {
            if let Err(e) = conn.complete_io(&mut sock) {
                match rustls_error(e) {
                    Ok(tls) => return Err(tls),
                    Err(e) => panic!("handshake with {addr} failed below TLS: {e}"),
                }
            }
        }
        Ok(TlsConn {
            io: Reader::new(StreamOwned::new(conn, sock)),
        })
    }

    /// A TLS 1.3 client offering `http/1.1` to a server with `cert`, which
    /// must succeed.
    fn open(addr: SocketAddr, cert: &'static str) -> TlsConn {
        TlsConn::handshake(addr, Offer::trusting(cert).alpn(&[b"http/1.1"]))
            .unwrap_or_else(|e| panic!("TLS handshake with {addr}: {e}"))
    }

    fn tls(&self) -> &ClientConnection {
        &self.io.get_ref().conn
    }

    fn send(&mut self, bytes: impl AsRef<[u8]>) {
        let stream = self.io.get_mut();
        stream
            .write_all(bytes.as_ref())
            .and_then(|()| stream.flush())
            .unwrap_or_else(|e| panic!("TLS write failed: {e}"));
    }

    fn response(&mut self) -> Response {
        self.io.response(false)
    }

    fn roundtrip(&mut self, raw: impl AsRef<[u8]>) -> Response {
        self.send(raw);
        self.response()
    }

    /// Reads until the server ends the connection, with or without a
    /// `close_notify`; returns the plaintext that came first and whether
    /// the close was a `close_notify`.
    fn read_to_close(&mut self) -> (Vec<u8>, bool) {
        let mut rest = self.io.take_pending();
        let deadline = Instant::now() + CLOSE_TIMEOUT;
        let mut buf = [0u8; 4096];
        loop {
            assert!(
                Instant::now() < deadline,
                "the server did not close within {CLOSE_TIMEOUT:?}"
            );
            match self.io.get_mut().read(&mut buf) {
                Ok(0) => return (rest, true),
                Ok(n) => rest.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return (rest, false),
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return (rest, false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => panic!("TLS read failed while waiting for the close: {e}"),
            }
        }
    }

    /// Asserts the connection serves a request.
    fn assert_alive(&mut self) {
        let resp = self.roundtrip(get("/plaintext"));
        assert_eq!(resp.status, 200, "{resp}");
        assert_eq!(resp.body, PLAINTEXT_BODY, "{resp}");
    }
}

/// A server of `flavour` with TLS on an ephemeral port from `pair`, the
/// test dataset, and `tweak` applied last.
fn tls_server(flavour: Flavour, pair: Pair, tweak: impl Fn(&mut Config)) -> Server {
    let mut config = Config::local(flavour, 2);
    config.tls_port = Some(0);
    config.tls_cert = cert_path(pair.cert);
    config.tls_key = cert_path(pair.key);
    config.dataset = PathBuf::from(DATASET);
    tweak(&mut config);
    start_with(config)
}

/// Runs `test` against a TLS server of each flavour with `pair`; it gets
/// the plain and the TLS address.
fn each_tls_flavour(
    pair: Pair,
    tweak: impl Fn(&mut Config),
    test: impl Fn(Flavour, SocketAddr, SocketAddr),
) {
    for flavour in FLAVOURS {
        let server = tls_server(flavour, pair, &tweak);
        let plain = server.local_addr();
        let tls = server.tls_addr().expect("a TLS address");
        eprintln!("--- flavour {flavour}, plain {plain}, TLS {tls}, {pair:?}");
        test(flavour, plain, tls);
        server.shutdown();
    }
}

// ---------------------------------------------------------------------------
// Handshakes and posture
// ---------------------------------------------------------------------------

/// Asserts the posture of an established connection: TLS 1.3, one of the
/// three AEAD suites.
fn assert_posture(conn: &TlsConn) {
    let tls = conn.tls();
    assert_eq!(tls.protocol_version(), Some(ProtocolVersion::TLSv1_3));
    let suite = tls
        .negotiated_cipher_suite()
        .expect("a cipher suite")
        .suite();
    assert!(AEAD_SUITES.contains(&suite), "suite {suite:?}");
}

fn handshake_and_serve(pair: Pair) {
    each_tls_flavour(
        pair,
        |_| {},
        |_, _, tls| {
            let mut conn = TlsConn::open(tls, pair.cert);
            assert_posture(&conn);
            // The certificate presented is the one configured.
            let presented = conn.tls().peer_certificates().expect("a certificate")[0].clone();
            let configured = CertificateDer::from_pem_file(cert_path(pair.cert)).unwrap();
            assert_eq!(presented.as_ref(), configured.as_ref());
            conn.assert_alive();
        },
    );
}

#[test]
fn rsa_key_in_pkcs8_serves() {
    handshake_and_serve(RSA_PKCS8);
}

#[test]
fn rsa_key_in_pkcs1_serves() {
    handshake_and_serve(RSA_PKCS1);
}

#[test]
fn ecdsa_key_in_pkcs8_serves() {
    handshake_and_serve(EC_PKCS8);
}

#[test]
fn ecdsa_key_in_sec1_serves() {
    handshake_and_serve(EC_SEC1);
}

#[test]
fn alpn_http11_when_offered_and_none_when_not() {
    each_tls_flavour(
        RSA_PKCS8,
        |_| {},
        |_, _, tls| {
            let offers: [(Protocols, Option<&[u8]>); 3] = [
                (&[b"http/1.1"], Some(b"http/1.1")),
                // curl's default offer: h2 first. Never h2 here.
                (&[b"h2", b"http/1.1"], Some(b"http/1.1")),
                (&[], None),
            ];
            for (offer, want) in offers {
                let mut conn = TlsConn::handshake(tls, Offer::trusting(RSA_PKCS8.cert).alpn(offer))
                    .unwrap_or_else(|e| panic!("offer {offer:?}: {e}"));
                assert_eq!(conn.tls().alpn_protocol(), want, "offer {offer:?}");
                assert_posture(&conn);
                conn.assert_alive();
            }
        },
    );
}

/// rustls' server (0.23, `hs.rs`, `process_extensions`): a client offering
/// ALPN with no protocol in common with a server that has ALPN protocols
/// configured gets a fatal `no_application_protocol` alert (RFC 7301 3.2),
/// rather than a handshake without ALPN. The server serves others after it.
#[test]
fn a_client_offering_only_h2_is_refused_with_no_application_protocol() {
    each_tls_flavour(
        RSA_PKCS8,
        |_| {},
        |_, _, tls| {
            let refused = TlsConn::handshake(tls, Offer::trusting(RSA_PKCS8.cert).alpn(&[b"h2"]));
            match refused {
                Err(rustls::Error::AlertReceived(AlertDescription::NoApplicationProtocol)) => {}
                Err(other) => {
                    panic!("h2-only offer: expected no_application_protocol, got {other}")
                }
                Ok(_) => panic!("h2-only offer: the handshake completed"),
            }
            TlsConn::open(tls, RSA_PKCS8.cert).assert_alive();
        },
    );
}

#[test]
fn a_client_limited_to_tls12_is_refused_and_others_are_served() {
    each_tls_flavour(
        RSA_PKCS8,
        |_| {},
        |_, plain, tls| {
            let mut open = TlsConn::open(tls, RSA_PKCS8.cert);
            for _ in 0..2 {
                let offer = Offer::trusting(RSA_PKCS8.cert)
                    .tls12_only()
                    .alpn(&[b"http/1.1"]);
                match TlsConn::handshake(tls, offer) {
                    Err(rustls::Error::AlertReceived(AlertDescription::ProtocolVersion)) => {}
                    Err(other) => panic!("TLS 1.2 only: expected protocol_version, got {other}"),
                    Ok(_) => panic!("TLS 1.2 only: the handshake completed"),
                }
            }
            open.assert_alive();
            TlsConn::open(tls, RSA_PKCS8.cert).assert_alive();
            Conn::open(plain).assert_alive();
        },
    );
}

/// Whatever arrives on the TLS port for bytes that are not TLS: nothing, or
/// TLS alert records (content type 21), and never an HTTP answer.
fn assert_only_alerts(what: &str, got: &[u8]) {
    let mut at = 0;
    while at < got.len() {
        let record = &got[at..];
        assert!(
            record.len() >= 7 && record[0] == 21 && record[3..5] == [0, 2],
            "{what}: expected nothing or TLS alert records, got {got:?} ({:?})",
            String::from_utf8_lossy(got)
        );
        at += 7;
    }
}

#[test]
fn plain_http_to_the_tls_port_is_closed_and_others_are_served() {
    each_tls_flavour(
        RSA_PKCS8,
        |_| {},
        |_, plain, tls| {
            let mut open = TlsConn::open(tls, RSA_PKCS8.cert);
            let mut conn = Conn::open(tls);
            conn.send(get("/plaintext"));
            // rustls reads "GET " as a record of an unknown content type:
            // a fatal decode_error alert (50), then the close.
            let got = conn.read_to_close();
            assert_eq!(got, [21, 3, 3, 0, 2, 2, 50], "plain HTTP got {got:?}");
            open.assert_alive();
            TlsConn::open(tls, RSA_PKCS8.cert).assert_alive();
            Conn::open(plain).assert_alive();
        },
    );
}

#[test]
fn garbage_to_the_tls_port_is_closed_and_others_are_served() {
    each_tls_flavour(
        RSA_PKCS8,
        |_| {},
        |_, _, tls| {
            let mut rng = Rng::new(7);
            for n in [1, 5, 64, 4096] {
                let mut conn = Conn::open(tls);
                // A first byte that is no TLS content type (20..=23): the
                // record layer refuses it at once, with no length to wait for.
                let mut junk = rng.bytes(n);
                junk[0] = 0xff;
                conn.send(&junk);
                let got = conn.read_to_close();
                assert_only_alerts(&format!("{n} bytes of garbage"), &got);
            }
            // A record header claiming a handshake record of 65,535 bytes,
            // more than any TLS version allows (rustls takes up to
            // 2^14 + 2,048 before refusing).
            let mut conn = Conn::open(tls);
            conn.send([22, 3, 1, 0xff, 0xff]);
            let got = conn.read_to_close();
            assert_only_alerts("an oversized record header", &got);
            TlsConn::open(tls, RSA_PKCS8.cert).assert_alive();
        },
    );
}

/// The first bytes a real client sends: its ClientHello records.
fn client_hello() -> Vec<u8> {
    let offer = Offer::trusting(RSA_PKCS8.cert).alpn(&[b"http/1.1"]);
    let mut conn =
        ClientConnection::new(offer.config(), ServerName::try_from(SERVER_NAME).unwrap()).unwrap();
    let mut hello = Vec::new();
    while conn.wants_write() {
        conn.write_tls(&mut hello).unwrap();
    }
    assert!(hello.len() > 100 && hello[0] == 22, "{hello:?}");
    hello
}

/// How long the server takes to close `conn`, which has sent what it will.
fn time_to_close(conn: &mut Conn, since: Instant) -> Duration {
    let got = conn.read_to_close();
    let took = since.elapsed();
    assert_only_alerts("a stalled handshake", &got);
    took
}

#[test]
fn a_stalled_handshake_is_closed_after_the_header_timeout() {
    let timeout = Duration::from_secs(1);
    each_tls_flavour(
        RSA_PKCS8,
        |c| c.header_timeout = timeout,
        |_, _, tls| {
            let hello = client_hello();
            let half = &hello[..hello.len() / 2];
            let started = Instant::now();
            let mut silent = Conn::open(tls);
            let mut halfway = Conn::open(tls);
            halfway.send(half);
            // A client that keeps trickling its ClientHello a byte at a time
            // does not renew the deadline.
            let mut trickle = Conn::open(tls);
            // (Six bytes in 0.84 s: all are sent before the deadline, so
            // none meets a closed socket.)
            for byte in &hello[..6] {
                trickle.send([*byte]);
                std::thread::sleep(Duration::from_millis(140));
            }
            // Meanwhile a complete handshake is served.
            let mut open = TlsConn::open(tls, RSA_PKCS8.cert);
            open.assert_alive();
            for (what, conn) in [
                ("nothing sent", &mut silent),
                ("half a ClientHello", &mut halfway),
                ("a ClientHello a byte every 140 ms", &mut trickle),
            ] {
                let took = time_to_close(conn, started);
                assert!(
                    took >= timeout && took <= timeout * 3,
                    "{what}: closed after {took:?}, expected between {timeout:?} and {:?}",
                    timeout * 3
                );
            }
            // The established connection outlives them: the handshake
            // deadline ended with its handshake.
            open.assert_alive();
        },
    );
}

// ---------------------------------------------------------------------------
// Routes over TLS
// ---------------------------------------------------------------------------

fn dataset() -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(DATASET).unwrap();
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    match value {
        serde_json::Value::Array(items) => items,
        serde_json::Value::Object(mut o) => match o.remove("items") {
            Some(serde_json::Value::Array(items)) => items,
            other => panic!("dataset.json: no items array: {other:?}"),
        },
        other => panic!("dataset.json: {other:?}"),
    }
}

/// Asserts `resp` is the /json/{count}?m={m} answer HttpArena's validator
/// accepts: `count` items, each the dataset's with `total = price * quantity * m`.
fn assert_json_items(resp: &Response, count: usize, m: i64) {
    assert_eq!(resp.status, 200, "{resp}");
    assert_eq!(resp.single("Content-Type"), "application/json", "{resp}");
    let got: serde_json::Value =
        serde_json::from_slice(&resp.body).unwrap_or_else(|e| panic!("not JSON ({e}): {resp}"));
    let data = dataset();
    let want_count = count.min(data.len());
    assert_eq!(got["count"], want_count, "{resp}");
    let items = got["items"].as_array().expect("items");
    assert_eq!(items.len(), want_count, "{resp}");
    for (item, source) in items.iter().zip(&data) {
        let mut want = source.clone();
        let total = source["price"].as_i64().unwrap() * source["quantity"].as_i64().unwrap() * m;
        want["total"] = total.into();
        assert_eq!(item, &want);
    }
}

#[test]
fn json_items_over_tls() {
    each_tls_flavour(
        EC_PKCS8,
        |_| {},
        |_, _, tls| {
            let mut conn = TlsConn::open(tls, EC_PKCS8.cert);
            // HttpArena's json-tls rotation, then a count past the dataset
            // and m's default.
            for (count, m) in [(1, 3), (5, 7), (10, 2), (15, 5), (25, 4), (40, 8), (50, 6)] {
                let resp = conn.roundtrip(get(&format!("/json/{count}?m={m}")));
                assert_json_items(&resp, count, m);
            }
            assert_json_items(&conn.roundtrip(get("/json/60?m=2")), 60, 2);
            assert_json_items(&conn.roundtrip(get("/json/3")), 3, 1);
            let bad = conn.roundtrip(get("/json/0?m=1"));
            assert_eq!(bad.status, 400, "{bad}");
        },
    );
}

/// The fields of every `/echo` request here, before its framing.
const ECHO_FIELDS: &str = "Host: localhost:8081\r\nContent-Type: application/octet-stream\r\n";

fn assert_echoed(resp: &Response, body: &[u8]) {
    assert_eq!(
        resp.status,
        200,
        "{}",
        String::from_utf8_lossy(&resp.raw[..200.min(resp.raw.len())])
    );
    assert_eq!(resp.content_length(), body.len());
    assert!(resp.body == body, "echo of {} bytes differs", body.len());
}

#[test]
fn echo_over_tls_through_small_socket_buffers() {
    each_tls_flavour(
        RSA_PKCS8,
        |c| c.max_body = 1024 * 1024,
        |_, _, tls| {
            let mut rng = Rng::new(42);
            let offer = Offer::trusting(RSA_PKCS8.cert).alpn(&[b"http/1.1"]);
            let mut conn = TlsConn::handshake_with(tls, offer, Buffers(Some(4096)))
                .unwrap_or_else(|e| panic!("handshake: {e}"));
            for size in [0, 1, 1024, 10 * 1024, 100 * 1024, 1024 * 1024] {
                let body = rng.bytes(size);
                let resp = conn.roundtrip(echo_request(ECHO_FIELDS, &body));
                assert_echoed(&resp, &body);
            }
            // HttpArena's 8gbit body, and chunked bodies.
            let arena: Vec<u8> = b"echo-body:".repeat(1024);
            assert_echoed(&conn.roundtrip(echo_request(ECHO_FIELDS, &arena)), &arena);
            let body = rng.bytes(100 * 1024);
            assert_echoed(
                &conn.roundtrip(chunked_echo_request(ECHO_FIELDS, &body, 16 * 1024)),
                &body,
            );
            let body = rng.bytes(1024 * 1024);
            assert_echoed(
                &conn.roundtrip(chunked_echo_request(ECHO_FIELDS, &body, 65_536)),
                &body,
            );
            // One byte over --max-body: 413, then the close.
            let over = rng.bytes(1024 * 1024 + 1);
            conn.send(echo_request(ECHO_FIELDS, &over));
            let resp = conn.response();
            assert_eq!(resp.status, 413, "{resp}");
            let (rest, close_notify) = conn.read_to_close();
            assert!(rest.is_empty(), "after the 413: {rest:?}");
            assert!(close_notify, "closed without close_notify after the 413");
        },
    );
}

#[test]
fn pipelined_requests_over_tls_are_answered_in_order() {
    each_tls_flavour(
        RSA_PKCS8,
        |_| {},
        |_, _, tls| {
            let mut conn = TlsConn::open(tls, RSA_PKCS8.cert);
            let echo = b"pipelined".to_vec();
            let mut batch = Vec::new();
            for i in 0..16 {
                batch.extend_from_slice(get(&format!("/baseline11?a={i}&b=1")).as_bytes());
                batch.extend_from_slice(get("/json/2?m=3").as_bytes());
                batch.extend_from_slice(&echo_request(ECHO_FIELDS, &echo));
            }
            batch.extend_from_slice(
                b"GET /pipeline HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
            );
            conn.send(&batch);
            for i in 0..16 {
                let sum = conn.response();
                assert_eq!(
                    (sum.status, sum.body.clone()),
                    (200, format!("{}", i + 1).into_bytes()),
                    "{sum}"
                );
                assert_json_items(&conn.response(), 2, 3);
                assert_echoed(&conn.response(), &echo);
            }
            let last = conn.response();
            assert_eq!(last.status, 200, "{last}");
            assert_eq!(last.body, b"ok", "{last}");
            // The close is a TLS close: close_notify after the last answer.
            let (rest, close_notify) = conn.read_to_close();
            assert!(rest.is_empty(), "after Connection: close: {rest:?}");
            assert!(close_notify, "closed without close_notify");
        },
    );
}

#[test]
fn plain_http_keeps_working_beside_tls() {
    each_tls_flavour(
        EC_SEC1,
        |_| {},
        |_, plain, tls| {
            let mut secure = TlsConn::open(tls, EC_SEC1.cert);
            let mut clear = Conn::open(plain);
            for _ in 0..3 {
                secure.assert_alive();
                clear.assert_alive();
            }
            assert_json_items(&clear.roundtrip(get("/json/4?m=5")), 4, 5);
            assert_json_items(&secure.roundtrip(get("/json/4?m=5")), 4, 5);
            // TLS records sent to the plain port are not HTTP: 400.
            let mut wrong = Conn::open(plain);
            wrong.send(client_hello());
            let got = wrong.read_to_close();
            assert!(
                got.starts_with(b"HTTP/1.1 400 "),
                "{:?}",
                String::from_utf8_lossy(&got)
            );
            secure.assert_alive();
        },
    );
}

// ---------------------------------------------------------------------------
// Start-up failures of the binary
// ---------------------------------------------------------------------------

/// A file of its own under the system's temporary directory, removed when
/// dropped.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str, contents: &[u8]) -> TempFile {
        let path = std::env::temp_dir().join(format!("chopin-tls-{}-{name}", std::process::id()));
        std::fs::write(&path, contents).unwrap();
        TempFile(path)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Runs the binary with `--tls-cert cert --tls-key key` to its exit (it
/// must exit within 10 s); returns the exit code and stderr.
fn start_binary(cert: &std::path::Path, key: &std::path::Path) -> (Option<i32>, String) {
    let mut child = Command::new(BIN)
        .args(["--port", "0", "--bind", "127.0.0.1", "--tls-port", "0"])
        .arg("--tls-cert")
        .arg(cert)
        .arg("--tls-key")
        .arg(key)
        .arg("--dataset")
        .arg(DATASET)
        // Only what is on the command line: no CHOPIN_* of the caller's,
        // and no warning about a variable it does not know.
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn chopin");
    // stderr ends when the process does: its end is the exit signal.
    let mut stderr = child.stderr.take().unwrap();
    let (done, exited) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        let _ = done.send(text);
    });
    let Ok(stderr) = exited.recv_timeout(Duration::from_secs(10)) else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("chopin with {cert:?} and {key:?} did not exit: it started");
    };
    (child.wait().unwrap().code(), stderr)
}

/// Asserts start-up fails with exit status 1 and one stderr line holding
/// every part of `says`.
fn assert_fails(cert: &std::path::Path, key: &std::path::Path, says: &[&str]) {
    let (code, stderr) = start_binary(cert, key);
    assert_eq!(code, Some(1), "{cert:?} {key:?}: {stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line: {stderr:?}");
    for part in says {
        assert!(lines[0].contains(part), "{part:?} not in {stderr:?}");
    }
}

#[test]
fn startup_fails_naming_a_missing_certificate() {
    let cert = PathBuf::from("/nonexistent/chopin/server.crt");
    assert_fails(
        &cert,
        &cert_path(RSA_PKCS8.key),
        &[
            "cannot use the TLS certificate /nonexistent/chopin/server.crt",
            "No such file or directory",
        ],
    );
}

#[test]
fn startup_fails_naming_a_missing_key() {
    let key = PathBuf::from("/nonexistent/chopin/server.key");
    assert_fails(
        &cert_path(RSA_PKCS8.cert),
        &key,
        &[
            "cannot use the TLS key /nonexistent/chopin/server.key",
            "No such file or directory",
        ],
    );
}

#[test]
fn startup_fails_naming_a_key_that_is_not_pem() {
    let garbage = TempFile::new("garbage.key", b"this is not a key\n\x00\x01\x02");
    let shown = garbage.0.display().to_string();
    assert_fails(
        &cert_path(RSA_PKCS8.cert),
        &garbage.0,
        &[
            &format!("cannot use the TLS key {shown}"),
            "no PEM block of the right kind in it",
        ],
    );
    // The certificate given as the key: PEM, but no key in it.
    let cert = cert_path(RSA_PKCS8.cert);
    assert_fails(
        &cert,
        &cert,
        &[
            &format!("cannot use the TLS key {}", cert.display()),
            "no PEM block of the right kind in it",
        ],
    );
    // A key given as the certificate.
    let key = cert_path(RSA_PKCS8.key);
    assert_fails(
        &key,
        &key,
        &[
            &format!("cannot use the TLS certificate {}", key.display()),
            "no PEM CERTIFICATE block in it",
        ],
    );
    // A PEM key block whose contents are no key.
    let hollow = TempFile::new(
        "hollow.key",
        b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    );
    assert_fails(
        &cert_path(RSA_PKCS8.cert),
        &hollow.0,
        &[
            &format!("cannot use the TLS key {}", hollow.0.display()),
            "failed to parse private key",
        ],
    );
}

#[test]
fn startup_fails_naming_a_certificate_and_key_that_do_not_match() {
    for (cert, key) in [
        (RSA_PKCS8.cert, EC_PKCS8.key),
        (EC_PKCS8.cert, RSA_PKCS1.key),
    ] {
        let (cert, key) = (cert_path(cert), cert_path(key));
        assert_fails(
            &cert,
            &key,
            &[
                &format!(
                    "cannot use the TLS key {} with the certificate {}",
                    key.display(),
                    cert.display()
                ),
                "KeyMismatch",
            ],
        );
    }
}

/// The pairs that work through the binary too: it starts, says so, and
/// serves TLS.
#[test]
fn the_binary_serves_tls_with_each_key_format() {
    for pair in [RSA_PKCS8, RSA_PKCS1, EC_PKCS8, EC_SEC1] {
        let mut child = Command::new(BIN)
            .args(["--port", "0", "--bind", "127.0.0.1", "--tls-port", "0"])
            .arg("--tls-cert")
            .arg(cert_path(pair.cert))
            .arg("--tls-key")
            .arg(cert_path(pair.key))
            .arg("--dataset")
            .arg(DATASET)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn chopin");
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let mut lines = String::new();
        let mut tls = None;
        let plain: SocketAddr = loop {
            let mut line = String::new();
            let n = io::BufRead::read_line(&mut stderr, &mut line).unwrap();
            assert!(n > 0, "{pair:?}: exited before its start-up line: {lines}");
            lines.push_str(&line);
            // chopin: TLS 1.3 on 127.0.0.1:PORT, certificate PATH
            if let Some(rest) = line.strip_prefix("chopin: TLS 1.3 on ") {
                let (addr, cert) = rest.split_once(", certificate ").unwrap();
                assert_eq!(cert.trim(), cert_path(pair.cert).display().to_string());
                tls = Some(addr.parse::<SocketAddr>().unwrap());
            }
            if let Some(rest) = line.split("listening on ").nth(1) {
                break rest.trim().parse().unwrap();
            }
        };
        let tls = tls.unwrap_or_else(|| panic!("{pair:?}: no TLS line in {lines:?}"));
        let mut conn = TlsConn::open(tls, pair.cert);
        assert_posture(&conn);
        conn.assert_alive();
        Conn::open(plain).assert_alive();
        // SAFETY: kill(2) on a child this test spawned and has not reaped.
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(0), "{pair:?}: {lines}");
    }
}
