package pairtls

import (
	"crypto/tls"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var now = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

// pair writes a CA and certificates for lb1 and lb2 into a directory.
func pair(t *testing.T) (string, PairFiles) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "pair")
	pf, err := WriteDir(dir, []Node{{"lb1", []string{"127.0.0.1"}}, {"lb2", []string{"127.0.0.2", "lb2.example"}}}, now, 365*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return dir, pf
}

func files(dir, node string) Files {
	return Files{Cert: filepath.Join(dir, node+".crt"), Key: filepath.Join(dir, node+".key"), CA: filepath.Join(dir, "ca.crt")}
}

func load(t *testing.T, f Files) *Material {
	t.Helper()
	m, err := Load(f, now)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// handshake connects client to server over a pipe and returns each side's
// error.
func handshake(client, server *tls.Config) (cerr, serr error) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	done := make(chan error, 1)
	go func() {
		s := tls.Server(b, server)
		err := s.Handshake()
		if err == nil && len(s.ConnectionState().VerifiedChains) == 0 {
			err = errTest("no verified client chain")
		}
		done <- err
		b.Close()
	}()
	c := tls.Client(a, client)
	cerr = c.Handshake()
	a.Close()
	return cerr, <-done
}

type errTest string

func (e errTest) Error() string { return string(e) }

func TestWriteDirModesAndReuse(t *testing.T) {
	dir, pf := pair(t)
	for _, name := range []string{"ca.crt", "ca.key", "lb1.crt", "lb1.key", "lb2.crt", "lb2.key"} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v %v, want mode 0600", name, fi.Mode(), err)
		}
	}
	if di, _ := os.Stat(dir); di.Mode().Perm() != 0o700 {
		t.Errorf("directory mode %v, want 0700", di.Mode().Perm())
	}
	// A third node from the same CA; existing files are never overwritten.
	more, err := WriteDir(dir, []Node{{"lb3", []string{"127.0.0.3"}}}, now, time.Hour*24)
	if err != nil || string(more.CACert) != string(pf.CACert) {
		t.Fatalf("another node: %v, same CA %v", err, string(more.CACert) == string(pf.CACert))
	}
	if _, err := WriteDir(dir, []Node{{"lb1", []string{"127.0.0.1"}}}, now, time.Hour); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("reissuing lb1 over its files: %v", err)
	}
	if _, err := WriteDir(t.TempDir(), []Node{{"lb 1", []string{"x"}}}, now, time.Hour); err == nil {
		t.Error("a bad node name was taken")
	}
}

// The two nodes authenticate each other, TLS 1.3 only; a stranger's
// certificate, a wrong pin and an older TLS are refused.
func TestMutualTLS(t *testing.T) {
	dir, pf := pair(t)
	lb1, lb2 := load(t, files(dir, "lb1")), load(t, files(dir, "lb2"))
	client := lb1.Client.Clone()
	client.ServerName = "127.0.0.2"
	if cerr, serr := handshake(client, lb2.Server); cerr != nil || serr != nil {
		t.Fatalf("lb1 to lb2: client %v, server %v", cerr, serr)
	}
	client.ServerName = "lb2.example"
	if cerr, serr := handshake(client, lb2.Server); cerr != nil || serr != nil {
		t.Fatalf("lb1 to lb2 by name: client %v, server %v", cerr, serr)
	}
	client.ServerName = "127.0.0.9"
	if cerr, _ := handshake(client, lb2.Server); cerr == nil {
		t.Error("a server certificate without the address dialled was taken")
	}

	// Another CA's node.
	odir, _ := pair(t)
	stranger := load(t, files(odir, "lb1"))
	sc := stranger.Client.Clone()
	sc.ServerName = "127.0.0.2"
	if cerr, serr := handshake(sc, lb2.Server); cerr == nil && serr == nil {
		t.Error("a stranger's node was taken")
	}

	// Pinned: lb2 takes lb1 only.
	f := files(dir, "lb2")
	f.PeerSHA256 = pf.Nodes[0].Fingerprint
	pinned := load(t, f)
	client.ServerName = "127.0.0.2"
	if cerr, serr := handshake(client, pinned.Server); cerr != nil || serr != nil {
		t.Errorf("pinned peer: client %v, server %v", cerr, serr)
	}
	f.PeerSHA256 = strings.ToUpper(pf.Nodes[1].Fingerprint) // lb2's own: not lb1's
	wrong := load(t, f)
	if _, serr := handshake(client, wrong.Server); serr == nil || !strings.Contains(serr.Error(), "peer_sha256") {
		t.Errorf("wrong pin: server %v", serr)
	}

	old := client.Clone()
	old.MinVersion, old.MaxVersion = tls.VersionTLS12, tls.VersionTLS12
	if cerr, _ := handshake(old, lb2.Server); cerr == nil {
		t.Error("TLS 1.2 was taken")
	}
	// A registering real server presents no certificate: the handshake
	// works, with no verified chain (the peer endpoint checks for one).
	anon := &tls.Config{RootCAs: lb1.Client.RootCAs, ServerName: "127.0.0.2", MinVersion: tls.VersionTLS13}
	if cerr, serr := handshake(anon, lb2.Server); cerr != nil || serr == nil || !strings.Contains(serr.Error(), "no verified client chain") {
		t.Errorf("no client certificate: client %v, server %v", cerr, serr)
	}
}

func TestLoadRefuses(t *testing.T) {
	dir, _ := pair(t)
	odir, _ := pair(t)
	cases := map[string]struct {
		f     Files
		setup func()
		want  string
	}{
		"key readable by others": {files(dir, "lb1"), func() { os.Chmod(filepath.Join(dir, "lb1.key"), 0o644) }, "chmod 600"},
		"key of another cert":    {Files{Cert: filepath.Join(dir, "lb1.crt"), Key: filepath.Join(dir, "lb2.key"), CA: filepath.Join(dir, "ca.crt")}, nil, "does not match"},
		"another CA":             {Files{Cert: filepath.Join(dir, "lb2.crt"), Key: filepath.Join(dir, "lb2.key"), CA: filepath.Join(odir, "ca.crt")}, nil, "unknown authority"},
		"bad pin":                {Files{Cert: filepath.Join(dir, "lb2.crt"), Key: filepath.Join(dir, "lb2.key"), CA: filepath.Join(dir, "ca.crt"), PeerSHA256: "abc"}, nil, "64 hex digits"},
		"missing CA":             {Files{Cert: filepath.Join(dir, "lb2.crt"), Key: filepath.Join(dir, "lb2.key"), CA: filepath.Join(dir, "nope.crt")}, nil, "nope.crt"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if tc.setup != nil {
				tc.setup()
			}
			if _, err := Load(tc.f, now); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want one with %q", err, tc.want)
			}
		})
	}
	if _, err := Load(files(dir, "lb2"), now.Add(2*365*24*time.Hour)); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Errorf("expired certificate: %v", err)
	}
}
