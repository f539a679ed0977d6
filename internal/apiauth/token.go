package apiauth

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"
	"unicode"
)

// MinTokenLen is the shortest accepted bearer token: 16 bytes keeps a
// random token out of reach of online guessing.
const MinTokenLen = 16

// maxTokenFile bounds what ReadTokenFile reads; a token is one short line.
const maxTokenFile = 4096

// CheckToken refuses tokens that are too short or that contain whitespace
// or control characters, which a client could not send in a header intact.
func CheckToken(token string) error {
	if token == "" {
		return fmt.Errorf("token is empty")
	}
	if len(token) < MinTokenLen {
		return fmt.Errorf("token is %d bytes, need at least %d", len(token), MinTokenLen)
	}
	if strings.IndexFunc(token, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0 {
		return fmt.Errorf("token must be a single word without spaces or control characters")
	}
	return nil
}

// ReadSecretFile reads a file holding a secret (a token, a private key):
// a regular file, owned by the daemon's user (root), that group and
// others can neither read nor write. A file another user owns could be
// rewritten by that user, whatever its mode. At most max bytes are read.
func ReadSecretFile(path string, max int) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err // names the path already
	}
	defer f.Close()
	// Stat the open file, not the path, so the checked file is the read one.
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("%s: mode %04o lets group or others at it; chmod 600 it", path, perm)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Geteuid() {
		return nil, fmt.Errorf("%s: owned by uid %d, not by the daemon's user (uid %d); chown it", path, st.Uid, os.Geteuid())
	}
	data, err := io.ReadAll(io.LimitReader(f, int64(max)+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(data) > max {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, max)
	}
	return data, nil
}

// ReadTokenFile reads a bearer token from path (see ReadSecretFile),
// trimming surrounding whitespace.
func ReadTokenFile(path string) (string, error) {
	data, err := ReadSecretFile(path, maxTokenFile)
	if err != nil {
		return "", fmt.Errorf("token file %w", err)
	}
	token := strings.TrimSpace(string(data))
	if err := CheckToken(token); err != nil {
		return "", fmt.Errorf("token file %s: %w", path, err)
	}
	return token, nil
}

// Token is a bearer token as the endpoints keep it: comparing fixed-size
// digests with crypto/subtle leaks neither the token's bytes nor its
// length.
type Token [sha256.Size]byte

// NewToken checks token and keeps its digest.
func NewToken(token string) (Token, error) {
	if err := CheckToken(token); err != nil {
		return Token{}, err
	}
	return sha256.Sum256([]byte(token)), nil
}

// Matches reports, in constant time, whether given is the token.
func (t *Token) Matches(given string) bool {
	g := sha256.Sum256([]byte(given))
	return subtle.ConstantTimeCompare(t[:], g[:]) == 1
}

// Bearer is the token of an "Authorization: Bearer <token>" header; the
// scheme is case-insensitive (RFC 6750).
func Bearer(header string) (string, bool) {
	scheme, token, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	return strings.TrimSpace(token), true
}
