package pairtls

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"time"

	"github.com/director-lb/director/internal/atomicfile"
)

// Node is one certificate to issue: the node's name (its file names and
// common name) and the addresses or host names its API is reached at.
type Node struct {
	Name  string
	Hosts []string
}

// Issued is one node's certificate and key, PEM, and its fingerprint.
type Issued struct {
	Name        string
	Cert, Key   []byte
	Fingerprint string
}

// PairFiles is a CA and the nodes' certificates, PEM.
type PairFiles struct {
	CACert, CAKey []byte
	Nodes         []Issued
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

// NewCA makes a small self-signed CA (ECDSA P-256) valid for validity.
func NewCA(now time.Time, validity time.Duration) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: "director pair CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(validity),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	return sign(tmpl, tmpl, key, key)
}

// Issue signs a certificate for n with the CA, for both server and client
// authentication (a node is both to its peer).
func Issue(caCertPEM, caKeyPEM []byte, n Node, now time.Time, validity time.Duration) (Issued, error) {
	if !nameRE.MatchString(n.Name) {
		return Issued{}, fmt.Errorf("node name %q: use 1-64 letters, digits, '_', '.' or '-'", n.Name)
	}
	if len(n.Hosts) == 0 {
		return Issued{}, fmt.Errorf("node %s: name the address its API listens on (NAME=10.0.0.11)", n.Name)
	}
	ca, caKey, err := parseCA(caCertPEM, caKeyPEM)
	if err != nil {
		return Issued{}, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return Issued{}, err
	}
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: n.Name},
		NotBefore:   now.Add(-time.Hour),
		NotAfter:    now.Add(validity),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	for _, h := range n.Hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	certPEM, keyPEM, err := sign(tmpl, ca, key, caKey)
	if err != nil {
		return Issued{}, err
	}
	b, _ := pem.Decode(certPEM)
	return Issued{Name: n.Name, Cert: certPEM, Key: keyPEM, Fingerprint: Fingerprint(b.Bytes)}, nil
}

func sign(tmpl, parent *x509.Certificate, key, parentKey *ecdsa.PrivateKey) (certPEM, keyPEM []byte, err error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, err
	}
	tmpl.SerialNumber = serial
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		return nil, nil, fmt.Errorf("sign certificate: %w", err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), nil
}

func parseCA(certPEM, keyPEM []byte) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	cb, _ := pem.Decode(certPEM)
	kb, _ := pem.Decode(keyPEM)
	if cb == nil || kb == nil {
		return nil, nil, errors.New("CA: want a PEM certificate and key")
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("CA certificate: %w", err)
	}
	k, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("CA key: %w", err)
	}
	key, ok := k.(*ecdsa.PrivateKey)
	if !ok || !key.PublicKey.Equal(cert.PublicKey) {
		return nil, nil, errors.New("CA key does not belong to the CA certificate")
	}
	return cert, key, nil
}

// Generate makes a pair's files in memory: a new CA, or the one given
// (caCert, caKey non-nil), and a certificate per node.
func Generate(caCert, caKey []byte, nodes []Node, now time.Time, validity time.Duration) (PairFiles, error) {
	var pf PairFiles
	var err error
	if caCert == nil {
		if caCert, caKey, err = NewCA(now, validity); err != nil {
			return pf, err
		}
	}
	pf.CACert, pf.CAKey = caCert, caKey
	seen := map[string]bool{}
	for _, n := range nodes {
		if seen[n.Name] {
			return pf, fmt.Errorf("node %s named twice", n.Name)
		}
		seen[n.Name] = true
		is, err := Issue(caCert, caKey, n, now, validity)
		if err != nil {
			return pf, err
		}
		pf.Nodes = append(pf.Nodes, is)
	}
	return pf, nil
}

// WriteDir generates into dir (created, mode 0700): ca.crt and ca.key,
// reused if both are there already, and NAME.crt, NAME.key per node;
// every file mode 0600. An existing node file is not overwritten.
func WriteDir(dir string, nodes []Node, now time.Time, validity time.Duration) (PairFiles, error) {
	caCertPath, caKeyPath := filepath.Join(dir, "ca.crt"), filepath.Join(dir, "ca.key")
	var caCert, caKey []byte
	c, cerr := os.ReadFile(caCertPath)
	k, kerr := os.ReadFile(caKeyPath)
	switch {
	case cerr == nil && kerr == nil:
		caCert, caKey = c, k
	case errors.Is(cerr, os.ErrNotExist) && errors.Is(kerr, os.ErrNotExist):
	default:
		return PairFiles{}, fmt.Errorf("%s: want both ca.crt and ca.key, or neither (%v; %v)", dir, cerr, kerr)
	}
	for _, n := range nodes {
		for _, ext := range []string{".crt", ".key"} {
			if _, err := os.Stat(filepath.Join(dir, n.Name+ext)); err == nil {
				return PairFiles{}, fmt.Errorf("%s already exists; remove it to issue a new one", filepath.Join(dir, n.Name+ext))
			}
		}
	}
	pf, err := Generate(caCert, caKey, nodes, now, validity)
	if err != nil {
		return pf, err
	}
	files := map[string][]byte{}
	if caCert == nil {
		files[caCertPath], files[caKeyPath] = pf.CACert, pf.CAKey
	}
	for _, n := range pf.Nodes {
		files[filepath.Join(dir, n.Name+".crt")] = n.Cert
		files[filepath.Join(dir, n.Name+".key")] = n.Key
	}
	for p, b := range files {
		if err := atomicfile.Write(p, b, 0o600); err != nil {
			return pf, err
		}
	}
	return pf, nil
}
