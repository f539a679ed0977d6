// Package pairtls is the pair API's mutual TLS: loading a node's
// certificate, key and the pair's CA into server and client
// configurations (TLS 1.3 only, the peer verified against the CA and,
// if given, a pinned SHA-256 of its certificate), and making those files
// (director pair-cert).
package pairtls

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/director-lb/director/internal/apiauth"
)

// Files name a node's TLS material.
type Files struct {
	Cert, Key, CA string
	// PeerSHA256, if set, is the hex SHA-256 of the peer's certificate
	// (DER): only that certificate is taken, even among the CA's.
	PeerSHA256 string
}

// Material is a node's loaded TLS material.
type Material struct {
	// Server serves the API: a client certificate is verified if given
	// (the peer must give one; real servers registering need not), so
	// the peer endpoint checks that the request has a verified chain.
	Server *tls.Config
	// Client is the peer syncer's: it presents the node's certificate
	// and verifies the peer's against the CA.
	Client *tls.Config
	// Digest covers every file's content: a reload that changes none of
	// them keeps the running API.
	Digest [sha256.Size]byte
	// NotAfter is when the node's certificate expires.
	NotAfter time.Time
}

// maxFile bounds a certificate or key file.
const maxFile = 1 << 20

// ParsePin reads a SHA-256 fingerprint: 64 hex digits, colons and case
// ignored (openssl x509 -fingerprint -sha256 prints AB:CD:...).
func ParsePin(s string) ([]byte, error) {
	h := strings.ToLower(strings.ReplaceAll(s, ":", ""))
	b, err := hex.DecodeString(h)
	if err != nil || len(b) != sha256.Size {
		return nil, fmt.Errorf("%q is not a SHA-256 fingerprint (64 hex digits)", s)
	}
	return b, nil
}

// Fingerprint is the hex SHA-256 of a certificate's DER, as ParsePin reads it.
func Fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}

// Load reads and checks f: the key must be a root-only file (mode 0600,
// owned by the daemon's user), the certificate must match the key, chain
// to the CA, be valid now and serve for both server and client
// authentication.
func Load(f Files, now time.Time) (*Material, error) {
	certPEM, err := os.ReadFile(f.Cert)
	if err != nil {
		return nil, fmt.Errorf("certificate: %w", err)
	}
	keyPEM, err := apiauth.ReadSecretFile(f.Key, maxFile)
	if err != nil {
		return nil, fmt.Errorf("key: %w", err)
	}
	caPEM, err := os.ReadFile(f.CA)
	if err != nil {
		return nil, fmt.Errorf("CA: %w", err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("%s and %s: %w", f.Cert, f.Key, err)
	}
	leaf := pair.Leaf
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("CA %s: no PEM certificate in it", f.CA)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}); err != nil {
		return nil, fmt.Errorf("certificate %s against CA %s: %w", f.Cert, f.CA, err)
	}
	var pin []byte
	if f.PeerSHA256 != "" {
		if pin, err = ParsePin(f.PeerSHA256); err != nil {
			return nil, fmt.Errorf("peer_sha256: %w", err)
		}
	}
	// Checked on every handshake, both ways: the CA's chain is verified by
	// crypto/tls, the pin here.
	verifyPin := func(cs tls.ConnectionState) error {
		if pin == nil || len(cs.PeerCertificates) == 0 {
			return nil
		}
		sum := sha256.Sum256(cs.PeerCertificates[0].Raw)
		if !bytes.Equal(sum[:], pin) {
			return errors.New("peer certificate does not match api.tls.peer_sha256")
		}
		return nil
	}
	m := &Material{
		Server: &tls.Config{
			MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{pair},
			ClientAuth: tls.VerifyClientCertIfGiven, ClientCAs: roots, VerifyConnection: verifyPin,
		},
		Client: &tls.Config{
			MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{pair},
			RootCAs: roots, VerifyConnection: verifyPin,
		},
		NotAfter: leaf.NotAfter,
	}
	h := sha256.New()
	for _, b := range [][]byte{certPEM, keyPEM, caPEM, pin} {
		fmt.Fprintf(h, "%d:", len(b))
		h.Write(b)
	}
	copy(m.Digest[:], h.Sum(nil))
	return m, nil
}
