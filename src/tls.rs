//! TLS for `--tls-port`: the transport under the same connection loop.
//!
//! rustls' unbuffered server connection is sans-I/O like the pipeline: it
//! is handed the ciphertext a read brought and gives back plaintext and
//! the handshake records to send; it is handed the answers and gives back
//! their records. The connection loop ([`crate::connection`]) reads and
//! writes the socket as for plain HTTP, and calls [`Tls::receive`] after
//! each read and [`Tls::send`] before each write: one code path for
//! requests and answers, whatever the transport.
//!
//! Why the unbuffered connection and not `ServerConnection`: the buffered
//! one keeps a deframing buffer of at least 4 KiB per connection once a
//! record has been read, and 16,384 idle connections would each pay it.
//! Here the ciphertext is read into the worker thread's scratch buffer and
//! a connection keeps only the unfinished tail of a record, which between
//! requests is nothing.
//!
//! The posture is HttpArena's (TLS 1.3 only, its three AEAD suites, X25519,
//! ALPN `http/1.1` or none): a client that offers only TLS 1.2 or older, or
//! speaks plain HTTP to the port, fails the handshake and is closed after
//! the alert rustls writes.

use std::io;
use std::path::Path;
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::UnbufferedServerConnection;
use rustls::unbuffered::{ConnectionState, EncodeError, EncryptError, InsufficientSizeError};
use rustls::ServerConfig;

/// Bytes a TLS record adds to at most 16 KiB of plaintext: the 5-byte
/// header, the inner content type and a 16-byte AEAD tag.
const RECORD_OVERHEAD: usize = 5 + 1 + 16;
const MAX_PLAINTEXT: usize = 16 * 1024;
/// Largest TLS 1.3 record on the wire (RFC 8446 5.2: 2^14 + 256 of
/// ciphertext, plus the header): the most an unfinished one can keep.
pub const MAX_RECORD: usize = 5 + MAX_PLAINTEXT + 256;

/// The crypto provider rustls runs on, chosen at build time: aws-lc-rs by
/// default, ring with `--no-default-features --features ring`.
fn provider() -> CryptoProvider {
    #[cfg(feature = "aws-lc-rs")]
    use rustls::crypto::aws_lc_rs as chosen;
    #[cfg(all(feature = "ring", not(feature = "aws-lc-rs")))]
    use rustls::crypto::ring as chosen;
    CryptoProvider {
        cipher_suites: vec![
            chosen::cipher_suite::TLS13_AES_128_GCM_SHA256,
            chosen::cipher_suite::TLS13_AES_256_GCM_SHA384,
            chosen::cipher_suite::TLS13_CHACHA20_POLY1305_SHA256,
        ],
        kx_groups: vec![chosen::kx_group::X25519],
        ..chosen::default_provider()
    }
}

/// The server's TLS configuration, from a PEM certificate chain and key
/// (RSA or ECDSA; PKCS#8, PKCS#1 or SEC1). The error names the file and
/// what is wrong with it.
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, String> {
    let read_err = |what: &str, path: &Path, e: &dyn std::fmt::Display| {
        format!("cannot use the TLS {what} {}: {e}", path.display())
    };
    let chain = CertificateDer::pem_file_iter(cert)
        .map_err(|e| read_err("certificate", cert, &pem_error(e)))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| read_err("certificate", cert, &pem_error(e)))?;
    if chain.is_empty() {
        return Err(read_err(
            "certificate",
            cert,
            &"no PEM CERTIFICATE block in it",
        ));
    }
    let private_key =
        PrivateKeyDer::from_pem_file(key).map_err(|e| read_err("key", key, &pem_error(e)))?;
    let mut config = ServerConfig::builder_with_provider(Arc::new(provider()))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| format!("the TLS configuration is refused: {e}"))?
        .with_no_client_auth()
        .with_single_cert(chain, private_key)
        .map_err(|e| {
            format!(
                "cannot use the TLS key {} with the certificate {}: {e}",
                key.display(),
                cert.display()
            )
        })?;
    // Never h2: this server speaks HTTP/1.1. A client that offers ALPN
    // gets `http/1.1`; one that offers none gets none.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    // No session tickets: no client of the arena resumes, and each ticket
    // is an encryption and a record per handshake.
    config.send_tls13_tickets = 0;
    config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    Ok(Arc::new(config))
}

/// What a PEM error means for the person starting the server.
fn pem_error(e: rustls::pki_types::pem::Error) -> String {
    use rustls::pki_types::pem::Error;
    match e {
        Error::Io(e) => e.to_string(),
        Error::NoItemsFound => "no PEM block of the right kind in it (for a key: PRIVATE KEY, \
                                RSA PRIVATE KEY or EC PRIVATE KEY)"
            .to_owned(),
        other => format!("not valid PEM ({other:?})"),
    }
}

/// One connection's TLS state: rustls' connection and the start of a
/// record that has not fully arrived.
pub struct Tls {
    conn: UnbufferedServerConnection,
    partial: Vec<u8>,
}

/// What the peer's bytes said, beyond the plaintext they carried.
#[derive(Debug, PartialEq, Eq)]
pub enum Received {
    Open,
    /// The peer sent `close_notify`: nothing more will come.
    PeerClosed,
    /// The records were not TLS we accept (plain HTTP, garbage, an old
    /// version, a bad record): the alert is in the output; close after it.
    Failed,
}

impl Tls {
    pub fn new(config: &Arc<ServerConfig>) -> io::Result<Box<Tls>> {
        let conn = UnbufferedServerConnection::new(config.clone()).map_err(io::Error::other)?;
        Ok(Box::new(Tls {
            conn,
            partial: Vec::new(),
        }))
    }

    /// Whether the handshake is still going: the header timeout runs.
    pub fn handshaking(&self) -> bool {
        self.conn.is_handshaking()
    }

    /// Bytes of an unfinished record kept for the next read.
    pub fn kept(&self) -> &[u8] {
        &self.partial
    }

    /// Processes the records in `cipher` (the kept tail of the last read,
    /// then this read): their plaintext goes to `plain` (which the caller
    /// sized to hold at least `cipher.len()` bytes), handshake records and
    /// alerts to `out`; what is left of an unfinished record is kept.
    /// Returns the plaintext length.
    pub fn receive(
        &mut self,
        cipher: &mut [u8],
        plain: &mut [u8],
        out: &mut Vec<u8>,
    ) -> (usize, Received) {
        let mut at = 0;
        let mut got = 0;
        let received = loop {
            let status = self.conn.process_tls_records(&mut cipher[at..]);
            let mut discard = status.discard;
            let stop = match status.state {
                Err(_) => Some(Received::Failed),
                Ok(ConnectionState::ReadTraffic(mut traffic)) => {
                    let mut failed = None;
                    while let Some(record) = traffic.next_record() {
                        let Ok(record) = record else {
                            failed = Some(Received::Failed);
                            break;
                        };
                        discard += record.discard;
                        let payload = record.payload;
                        plain[got..got + payload.len()].copy_from_slice(payload);
                        got += payload.len();
                    }
                    failed
                }
                Ok(ConnectionState::EncodeTlsData(mut encode)) => {
                    encode_into(out, |buf| encode.encode(buf));
                    None
                }
                Ok(ConnectionState::TransmitTlsData(transmit)) => {
                    // Sent with this step's answers, after what is in `out`.
                    transmit.done();
                    None
                }
                Ok(ConnectionState::PeerClosed | ConnectionState::Closed) => {
                    Some(Received::PeerClosed)
                }
                // Need more bytes (BlockedHandshake), or everything here is
                // processed (WriteTraffic); early data is never accepted.
                Ok(_) => Some(Received::Open),
            };
            at += discard;
            match stop {
                None => {}
                Some(Received::Failed) => {
                    self.alert(out);
                    break Received::Failed;
                }
                Some(received) => break received,
            }
        };
        self.partial.clear();
        if received == Received::Open {
            self.partial.extend_from_slice(&cipher[at..]);
        }
        if self.partial.capacity() > MAX_RECORD {
            self.partial.shrink_to(MAX_RECORD);
        }
        (got, received)
    }

    /// Encrypts `plain` (answers) into records appended to `out`, with
    /// `close_notify` after them when `close`.
    pub fn send(&mut self, plain: &[u8], close: bool, out: &mut Vec<u8>) -> io::Result<()> {
        if plain.is_empty() && !close {
            return Ok(());
        }
        loop {
            let status = self.conn.process_tls_records(&mut []);
            match status.state.map_err(io::Error::other)? {
                ConnectionState::EncodeTlsData(mut encode) => {
                    encode_into(out, |buf| encode.encode(buf));
                }
                ConnectionState::TransmitTlsData(transmit) => transmit.done(),
                ConnectionState::WriteTraffic(mut traffic) => {
                    let records = plain.len().div_ceil(MAX_PLAINTEXT).max(1);
                    let guess = plain.len() + records * RECORD_OVERHEAD;
                    encrypt_into(out, guess, |buf| traffic.encrypt(plain, buf))?;
                    if close {
                        encrypt_into(out, 2 * RECORD_OVERHEAD, |buf| {
                            traffic.queue_close_notify(buf)
                        })?;
                    }
                    return Ok(());
                }
                // Answers before the handshake ended cannot be: nothing was
                // decrypted. Closing without them is all there is to do.
                _ => return Err(io::ErrorKind::InvalidData.into()),
            }
        }
    }

    /// After a failed `process_tls_records`, rustls has queued the alert
    /// that says why, last: a handshake that fails after its ServerHello
    /// (a client offering ALPN `h2` alone gets `no_application_protocol`)
    /// has queued the ServerHello before it, and the alert, encrypted with
    /// the handshake keys, only means something after it. So every queued
    /// record is encoded, in order.
    fn alert(&mut self, out: &mut Vec<u8>) {
        // rustls queues a few records per flight; the bound only guards
        // against a state that never stops asking.
        for _ in 0..16 {
            let status = self.conn.process_tls_records(&mut []);
            match status.state {
                Ok(ConnectionState::EncodeTlsData(mut encode)) => {
                    encode_into(out, |buf| encode.encode(buf));
                }
                Ok(ConnectionState::TransmitTlsData(transmit)) => transmit.done(),
                _ => break,
            }
        }
    }
}

/// Runs `encode` on room at the end of `out`, growing it to what the
/// record needs.
fn encode_into(out: &mut Vec<u8>, encode: impl FnMut(&mut [u8]) -> Result<usize, EncodeError>) {
    // An encoding error other than room (the record was taken already)
    // leaves nothing to send.
    let _ = write_records(out, 4096, encode, |e| match e {
        EncodeError::InsufficientSize(InsufficientSizeError { required_size }) => {
            Some(*required_size)
        }
        _ => None,
    });
}

/// As [`encode_into`], for application data and `close_notify`.
fn encrypt_into(
    out: &mut Vec<u8>,
    guess: usize,
    encrypt: impl FnMut(&mut [u8]) -> Result<usize, EncryptError>,
) -> io::Result<()> {
    write_records(out, guess, encrypt, |e| match e {
        EncryptError::InsufficientSize(InsufficientSizeError { required_size }) => {
            Some(*required_size)
        }
        _ => None,
    })
    .map_err(io::Error::other)
}

/// Runs `write` on `need` bytes of room at the end of `out`, then again on
/// what `required` says an error asked for; keeps what was written.
fn write_records<E>(
    out: &mut Vec<u8>,
    mut need: usize,
    mut write: impl FnMut(&mut [u8]) -> Result<usize, E>,
    required: impl Fn(&E) -> Option<usize>,
) -> Result<(), E> {
    loop {
        let at = out.len();
        out.resize(at + need, 0);
        let written = write(&mut out[at..]);
        out.truncate(at + *written.as_ref().unwrap_or(&0));
        match written {
            Ok(_) => return Ok(()),
            Err(e) => match required(&e) {
                Some(size) => need = size,
                None => return Err(e),
            },
        }
    }
}
