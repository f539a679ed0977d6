package register

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"io"
	"os"
	"strings"
	"unicode"
)

// MinTokenLen is the shortest accepted bearer token: 16 bytes keeps a
// random token out of reach of online guessing.
const MinTokenLen = 16

// maxTokenFile bounds what ReadTokenFile reads; a token is one short line.
const maxTokenFile = 4096

// checkToken refuses tokens that are too short or that contain whitespace
// or control characters, which a client could not send in a header intact.
func checkToken(token string) error {
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

// ReadTokenFile reads a bearer token from path, trimming surrounding
// whitespace. It refuses files that group or other may access, since the
// token lets anyone who knows it add servers to a pool.
func ReadTokenFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("token file: %w", err)
	}
	defer f.Close()
	// Stat the open file, not the path, so the checked file is the read one.
	fi, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf("token file %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("token file %s: not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return "", fmt.Errorf("token file %s: mode %04o lets group or others read it; chmod 600 it", path, perm)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxTokenFile+1))
	if err != nil {
		return "", fmt.Errorf("token file %s: %w", path, err)
	}
	if len(data) > maxTokenFile {
		return "", fmt.Errorf("token file %s: larger than %d bytes", path, maxTokenFile)
	}
	token := strings.TrimSpace(string(data))
	if err := checkToken(token); err != nil {
		return "", fmt.Errorf("token file %s: %w", path, err)
	}
	return token, nil
}

// tokenHash is what the handler keeps: comparing fixed-size digests with
// crypto/subtle leaks neither the token's bytes nor its length.
type tokenHash [sha256.Size]byte

func hashToken(token string) tokenHash { return sha256.Sum256([]byte(token)) }

func (h *tokenHash) matches(given string) bool {
	g := hashToken(given)
	return subtle.ConstantTimeCompare(h[:], g[:]) == 1
}
