// Package register serves an authenticated HTTP endpoint through which real
// servers add themselves to, and drain themselves out of, a configured pool.
package register

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// MaxBodySize bounds a request body; a registration is well under 200 bytes.
const MaxBodySize = 4096

// Request is the JSON body of /v1/register and /v1/deregister.
type Request struct {
	Service string `json:"service"`
	Address string `json:"address"`
	Port    int    `json:"port"`
	// Weight is nil when omitted (register defaults it to 1).
	Weight *int `json:"weight,omitempty"`
}

// FieldError is a refusal that names the offending field, so that an
// operator reading a client's log knows what to fix.
type FieldError struct {
	Field  string
	Reason string
}

func (e *FieldError) Error() string { return fmt.Sprintf("%s: %s", e.Field, e.Reason) }

// fieldErr builds a *FieldError with a formatted reason.
func fieldErr(field, format string, args ...any) error {
	return &FieldError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// DecodeRequest parses a request body strictly: one JSON object of at most
// MaxBodySize bytes, exact-case known keys only, no duplicates, no nulls and
// nothing after the object. encoding/json alone would accept "SERVICE",
// repeated keys (last wins) and trailing data, any of which could hide a
// mistake or a smuggling attempt, so the object is walked token by token.
func DecodeRequest(r io.Reader) (Request, error) {
	var req Request
	body, err := io.ReadAll(io.LimitReader(r, MaxBodySize+1))
	if err != nil {
		return req, fieldErr("body", "reading: %v", err)
	}
	if len(body) > MaxBodySize {
		return req, fieldErr("body", "larger than %d bytes", MaxBodySize)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return req, fieldErr("body", "must be a JSON object")
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return req, fieldErr("body", "malformed JSON: %v", err)
		}
		key, ok := tok.(string)
		if !ok {
			return req, fieldErr("body", "malformed JSON object")
		}
		if key == "" {
			return req, fieldErr("body", "empty field name")
		}
		if seen[key] {
			return req, fieldErr(key, "given more than once")
		}
		seen[key] = true
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return req, fieldErr("body", "malformed JSON: %v", err)
		}
		if string(raw) == "null" {
			return req, fieldErr(key, "must not be null")
		}
		if err := decodeField(&req, key, raw); err != nil {
			return req, err
		}
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('}') {
		return req, fieldErr("body", "malformed JSON object")
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return req, fieldErr("body", "unexpected data after the JSON object")
	}
	if req.Service == "" {
		return req, fieldErr("service", "required")
	}
	if req.Address == "" {
		return req, fieldErr("address", "required")
	}
	if !seen["port"] {
		return req, fieldErr("port", "required")
	}
	return req, nil
}

// decodeField stores one key's value, refusing unknown keys and wrong types.
func decodeField(req *Request, key string, raw json.RawMessage) error {
	var dst any
	switch key {
	case "service":
		dst = &req.Service
	case "address":
		dst = &req.Address
	case "port":
		dst = &req.Port
	case "weight":
		req.Weight = new(int)
		dst = req.Weight
	default:
		return fieldErr(key, "unknown field")
	}
	if err := json.Unmarshal(raw, dst); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return fieldErr(key, "must be a JSON %s", kindOf(key))
		}
		return fieldErr(key, "invalid value: %v", err)
	}
	return nil
}

func kindOf(key string) string {
	if key == "port" || key == "weight" {
		return "integer"
	}
	return "string"
}
