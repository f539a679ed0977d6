package checks

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// StatusCodes is a set of accepted HTTP status codes, kept as sorted,
// merged, inclusive ranges.
type StatusCodes []StatusRange

// StatusRange is an inclusive range of status codes.
type StatusRange struct{ Lo, Hi int }

// defaultStatus is what an HTTP check accepts unless told otherwise.
var defaultStatus = StatusCodes{{200, 299}}

// ParseStatusCodes parses specs such as "200", "200-299" or "200,301-302";
// each spec may itself be a comma- or space-separated list. Codes must be
// 100-599.
func ParseStatusCodes(specs ...string) (StatusCodes, error) {
	var out StatusCodes
	for _, spec := range specs {
		fields := strings.FieldsFunc(spec, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' })
		for _, f := range fields {
			r, err := parseStatusRange(f)
			if err != nil {
				return nil, err
			}
			out = append(out, r)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no status codes in %q", strings.Join(specs, ","))
	}
	return out.normalize(), nil
}

func parseStatusRange(f string) (StatusRange, error) {
	lo, hi, isRange := strings.Cut(f, "-")
	a, err := parseStatus(lo)
	if err != nil {
		return StatusRange{}, fmt.Errorf("status %q: %w", f, err)
	}
	b := a
	if isRange {
		if b, err = parseStatus(hi); err != nil {
			return StatusRange{}, fmt.Errorf("status %q: %w", f, err)
		}
		if b < a {
			return StatusRange{}, fmt.Errorf("status %q: range ends before it starts", f)
		}
	}
	return StatusRange{a, b}, nil
}

func parseStatus(s string) (int, error) {
	// Exactly three digits: strconv alone would take "+200" or "0200".
	if len(s) != 3 || strings.Trim(s, "0123456789") != "" {
		return 0, fmt.Errorf("want a three-digit code 100-599")
	}
	n, _ := strconv.Atoi(s)
	if n < 100 || n > 599 {
		return 0, fmt.Errorf("want a code 100-599, got %d", n)
	}
	return n, nil
}

func (s StatusCodes) normalize() StatusCodes {
	s = slices.Clone(s)
	slices.SortFunc(s, func(a, b StatusRange) int { return a.Lo - b.Lo })
	var out StatusCodes
	for _, r := range s {
		if n := len(out); n > 0 && r.Lo <= out[n-1].Hi+1 {
			out[n-1].Hi = max(out[n-1].Hi, r.Hi)
			continue
		}
		out = append(out, r)
	}
	return out
}

// Contains reports whether code is accepted.
func (s StatusCodes) Contains(code int) bool {
	for _, r := range s {
		if code >= r.Lo && code <= r.Hi {
			return true
		}
	}
	return false
}

// String writes the set the way ParseStatusCodes reads it: "200-299,304".
func (s StatusCodes) String() string {
	parts := make([]string, len(s))
	for i, r := range s {
		if r.Lo == r.Hi {
			parts[i] = strconv.Itoa(r.Lo)
		} else {
			parts[i] = fmt.Sprintf("%d-%d", r.Lo, r.Hi)
		}
	}
	return strings.Join(parts, ",")
}
