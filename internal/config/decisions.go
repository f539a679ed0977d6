package config

import (
	"path/filepath"
)

// Decisions is where the runtime decisions (drains, weights,
// registrations) are kept, and how many.
type Decisions struct {
	// File persists them; under systemd's StateDirectory, so that they
	// survive a reboot of both nodes.
	File string `yaml:"file,omitempty"`
	// MaxEntries caps the decisions kept, withdrawn ones included, so
	// that the whole set always fits in one peer sync.
	MaxEntries int `yaml:"max_entries,omitempty"`
}

// Defaults and bounds of decisions. MaxDecisionEntries is the decision
// store's own bound (decisions.MaxEntriesLimit), which a test keeps equal.
const (
	DefaultDecisionsFile       = "/var/lib/director/decisions.json"
	DefaultDecisionEntries     = 5000
	MaxDecisionEntries         = 6000
	DefaultRegistrationServers = 1000
)

func (c *checker) decisions(cfg *Config) {
	d := &cfg.Decisions
	switch {
	case d.File == "":
		d.File = DefaultDecisionsFile
	case !filepath.IsAbs(d.File):
		c.errf("decisions.file", "%q must be an absolute path", d.File)
	}
	switch {
	case !c.set("decisions.max_entries"):
		d.MaxEntries = DefaultDecisionEntries
	case d.MaxEntries < 1 || d.MaxEntries > MaxDecisionEntries:
		c.errf("decisions.max_entries", "must be 1-%d (the most that fit in one peer sync), got %d", MaxDecisionEntries, d.MaxEntries)
	}
}

// DecisionsFile is where the runtime decisions persist; "" keeps them in
// memory (tests).
func (c *Config) DecisionsFile() string { return c.Decisions.File }

// LegacyDecisionsFile is where versions before decisions.file kept them:
// beside the IPVS ownership file, on /run. The daemon moves them from
// there once.
func (c *Config) LegacyDecisionsFile() string {
	if c.IPVS.StateFile == "" {
		return ""
	}
	return filepath.Join(filepath.Dir(c.IPVS.StateFile), "overrides.json")
}
