// Package tlsconfig serves TLS from PEM certificate files, optionally
// requiring clients to present a certificate signed by a given CA (mutual
// TLS), and picks up certificates rotated on disk without a restart.
//
// Load reads the files once and fails with a clear error if they are
// missing or invalid. Afterwards a handshake checks whether the files
// changed, at most once every Config.Reload, by their size, modification
// time and identity (so a file replaced by a rename, as cert-manager and
// Kubernetes secret volumes do, counts as changed even with an old
// timestamp). Changed files are loaded and used from that handshake on; if
// they are invalid, for instance because the certificate was replaced but
// not yet its key, the previous certificate keeps being served, the
// failure is logged once, and the files are tried again when they change
// again. No goroutine is started, so there is nothing to close.
//
// Rotate files by writing new ones beside them and renaming them into
// place: a file rewritten in place may be read half written (that is
// harmless, the load fails and is retried, but it delays the rotation).
package tlsconfig

import (
	"cmp"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// Config says where the certificate files are and how to serve them.
type Config struct {
	// CertFile is the server's PEM certificate chain: the leaf first, then
	// any intermediates. Required.
	CertFile string
	// KeyFile is the PEM private key of the leaf certificate. Required.
	KeyFile string
	// ClientCAFile, if set, is a PEM bundle of CA certificates: every
	// client must then present a certificate that chains to one of them
	// and is valid for client authentication (mutual TLS). It is reloaded
	// with the certificate, so CAs can be rotated too.
	ClientCAFile string
	// MinVersion is the lowest TLS version accepted: tls.VersionTLS12 (the
	// default) or tls.VersionTLS13.
	MinVersion uint16
	// Reload is how often, at most, a handshake checks whether the files
	// changed. Default 1 minute; negative: never (only Server.Reload
	// reloads).
	Reload time.Duration
	// Logger receives reloads and reload failures. Default: no logging.
	Logger *zap.Logger
}

// DefaultReload is the default Config.Reload.
const DefaultReload = time.Minute

// withDefaults returns c with zero fields set to their defaults.
func (c Config) withDefaults() Config {
	c.MinVersion = cmp.Or(c.MinVersion, tls.VersionTLS12)
	c.Reload = cmp.Or(c.Reload, DefaultReload)
	c.Logger = cmp.Or(c.Logger, zap.NewNop())
	return c
}

// Validate reports whether c, after defaults, is usable. It does not read
// the files; Load does.
func (c Config) Validate() error {
	c = c.withDefaults()
	switch {
	case c.CertFile == "" || c.KeyFile == "":
		return errors.New("tlsconfig: both a certificate file and a key file are required")
	case c.MinVersion != tls.VersionTLS12 && c.MinVersion != tls.VersionTLS13:
		return fmt.Errorf("tlsconfig: minimum version %s is not supported; use TLS 1.2 or TLS 1.3", tls.VersionName(c.MinVersion))
	}
	return nil
}

// Server holds the certificate and client CAs currently loaded from the
// files, and makes tls.Configs that serve them. It is safe for concurrent
// use.
type Server struct {
	cfg   Config
	start time.Time // the origin of next, for a monotonic clock

	cur  atomic.Pointer[state]
	next atomic.Int64 // when the files are next checked, in ns since start

	mu     sync.Mutex // serializes reloads
	failed *stamps    // the files that last failed to load, if any; guarded by mu
}

// state is one load of the files.
type state struct {
	cert      *tls.Certificate
	clientCAs *x509.CertPool // nil without mutual TLS
	files     stamps
}

// stamps identify the versions of the files that were loaded.
type stamps struct {
	cert, key, clientCA os.FileInfo // clientCA is nil without mutual TLS
}

// Load reads the files named by cfg and returns a Server for them.
func Load(cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	st, err := cfg.load()
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, start: time.Now()}
	s.cur.Store(st)
	s.next.Store(int64(cfg.Reload))
	return s, nil
}

// TLSConfig returns a new server configuration that serves the current
// certificate, and with a ClientCAFile requires and verifies a client
// certificate against the current CAs. The caller may set other fields
// (NextProtos, as gRPC and net/http do, CipherSuites, …) but must leave
// Certificates empty, since crypto/tls consults GetCertificate only then
// or for clients that send a server name, and must not replace
// GetCertificate, ClientAuth, ClientCAs or VerifyConnection.
//
// Client certificates are verified in VerifyConnection rather than by
// crypto/tls through ClientCAs, so that rotated CAs apply without
// replacing the caller's configuration per connection; as a consequence
// tls.ConnectionState.VerifiedChains is empty, and the server sends no
// list of acceptable CAs in its certificate request.
func (s *Server) TLSConfig() *tls.Config {
	c := &tls.Config{
		MinVersion:     s.cfg.MinVersion,
		GetCertificate: s.getCertificate,
	}
	if s.cfg.ClientCAFile != "" {
		c.ClientAuth = tls.RequireAnyClientCert
		c.VerifyConnection = s.verifyConnection
	}
	return c
}

// Reload reloads the files now, whether or not they changed. On error the
// previous certificate and CAs stay in use.
func (s *Server) Reload() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.next.Store(int64(time.Since(s.start) + s.cfg.Reload))
	st, err := s.cfg.load()
	if err != nil {
		return err
	}
	s.swap(st)
	return nil
}

func (s *Server) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return s.current().cert, nil
}

// verifyConnection verifies the client's certificate chain against the
// current client CAs, as crypto/tls does with ClientCAs.
func (s *Server) verifyConnection(cs tls.ConnectionState) error {
	certs := cs.PeerCertificates
	if len(certs) == 0 {
		return errors.New("tlsconfig: client certificate required")
	}
	opts := x509.VerifyOptions{
		Roots:         s.current().clientCAs,
		Intermediates: x509.NewCertPool(),
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	for _, c := range certs[1:] {
		opts.Intermediates.AddCert(c)
	}
	if _, err := certs[0].Verify(opts); err != nil {
		return fmt.Errorf("tlsconfig: verify client certificate: %w", err)
	}
	return nil
}

// current returns the state to serve, first reloading the files if they
// are due for a check and changed. Only one handshake checks at a time;
// the others meanwhile serve the current state.
func (s *Server) current() *state {
	if s.cfg.Reload > 0 && int64(time.Since(s.start)) >= s.next.Load() && s.mu.TryLock() {
		if now := time.Since(s.start); int64(now) >= s.next.Load() {
			s.next.Store(int64(now + s.cfg.Reload))
			s.reloadIfChanged()
		}
		s.mu.Unlock()
	}
	return s.cur.Load()
}

// reloadIfChanged loads the files if they differ from those in use,
// unless these very files already failed to load. s.mu must be held.
func (s *Server) reloadIfChanged() {
	files, err := s.cfg.stat()
	switch {
	case err == nil && files.equal(s.cur.Load().files):
		s.failed = nil
		return
	case s.failed != nil && files.equal(*s.failed):
		return // logged already
	}
	if err == nil {
		var st *state
		if st, err = s.cfg.load(); err == nil {
			s.swap(st)
			return
		}
	}
	s.failed = &files
	s.cfg.Logger.Warn("TLS files changed but cannot be loaded; serving the previous certificate", zap.Error(err))
}

// swap makes st current. s.mu must be held.
func (s *Server) swap(st *state) {
	s.cur.Store(st)
	s.failed = nil
	s.cfg.Logger.Info("TLS certificate loaded",
		zap.String("cert_file", s.cfg.CertFile), zap.Time("not_after", st.cert.Leaf.NotAfter))
}

// stat returns the current versions of the files. On error the stamps of
// the files that could be read are returned.
func (c Config) stat() (stamps, error) {
	var s stamps
	var err error
	if s.cert, err = os.Stat(c.CertFile); err != nil {
		return s, fmt.Errorf("tlsconfig: certificate file: %w", err)
	}
	if s.key, err = os.Stat(c.KeyFile); err != nil {
		return s, fmt.Errorf("tlsconfig: key file: %w", err)
	}
	if c.ClientCAFile != "" {
		if s.clientCA, err = os.Stat(c.ClientCAFile); err != nil {
			return s, fmt.Errorf("tlsconfig: client CA file: %w", err)
		}
	}
	return s, nil
}

// load reads and parses the files. It stats them before reading them, so
// that a change made while they are read shows at the next check.
func (c Config) load() (*state, error) {
	files, err := c.stat()
	if err != nil {
		return nil, err
	}
	certPEM, err := os.ReadFile(c.CertFile)
	if err != nil {
		return nil, fmt.Errorf("tlsconfig: certificate file: %w", err)
	}
	keyPEM, err := os.ReadFile(c.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("tlsconfig: key file: %w", err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("tlsconfig: certificate file %s with key file %s: %w", c.CertFile, c.KeyFile, err)
	}
	if cert.Leaf == nil { // GODEBUG x509keypairleaf=0
		if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, fmt.Errorf("tlsconfig: certificate file %s: %w", c.CertFile, err)
		}
	}
	st := &state{cert: &cert, files: files}
	if c.ClientCAFile != "" {
		b, err := os.ReadFile(c.ClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("tlsconfig: client CA file: %w", err)
		}
		if st.clientCAs, err = parseCAs(b); err != nil {
			return nil, fmt.Errorf("tlsconfig: client CA file %s: %w", c.ClientCAFile, err)
		}
	}
	return st, nil
}

// parseCAs returns a pool of the certificates in the PEM bundle b, failing
// if one does not parse or there is none.
func parseCAs(b []byte) (*x509.CertPool, error) {
	pool := x509.NewCertPool()
	n := 0
	for {
		var block *pem.Block
		if block, b = pem.Decode(b); block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate %d: %w", n+1, err)
		}
		pool.AddCert(c)
		n++
	}
	if n == 0 {
		return nil, errors.New("no PEM CERTIFICATE block found")
	}
	return pool, nil
}

// equal reports whether s and o identify the same versions of the files.
func (s stamps) equal(o stamps) bool {
	return sameFile(s.cert, o.cert) && sameFile(s.key, o.key) && sameFile(s.clientCA, o.clientCA)
}

// sameFile reports whether a and b describe the same, unchanged file.
func sameFile(a, b os.FileInfo) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return os.SameFile(a, b) && a.Size() == b.Size() && a.ModTime().Equal(b.ModTime())
}
