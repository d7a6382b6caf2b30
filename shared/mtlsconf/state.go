package mtlsconf

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"time"
)

// StateFile records what apply last uploaded: per account and certificate name, the
// id and the SHA-256 of the certificate (public data, no key and no password). It is
// needed only where LivePerson does not report a certificate's expiry: without it a
// changed p12 could not be told from the uploaded one. Losing it costs one needless
// replace, never a wrong result.
type StateFile struct {
	Version int           `json:"version"`
	Records []StateRecord `json:"certificates"`
}

// StateRecord is one uploaded certificate.
type StateRecord struct {
	AccountID   string    `json:"accountId"`
	Name        string    `json:"name"`
	ID          string    `json:"id"`
	Fingerprint string    `json:"sha256"`
	NotAfter    time.Time `json:"notAfter"`
	AppliedAt   time.Time `json:"appliedAt"`
}

// DefaultStatePath is the state file beside a configuration file.
func DefaultStatePath(configPath string) string {
	return filepath.Join(filepath.Dir(configPath), ".lpmtls-state.json")
}

// ReadState reads path; a missing file is an empty state.
func ReadState(path string) (*StateFile, error) {
	raw, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return &StateFile{Version: 1}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cannot read the state file %s: %w", path, errors.Unwrap(err))
	}
	var st StateFile
	if err := json.Unmarshal(raw, &st); err != nil {
		return nil, fmt.Errorf("the state file %s is not valid JSON (delete it to start over): %w", path, err)
	}
	return &st, nil
}

// Lookup returns the record of a certificate, nil when none.
func (s *StateFile) Lookup(account, name string) *StateRecord {
	for i := range s.Records {
		if s.Records[i].AccountID == account && s.Records[i].Name == name {
			return &s.Records[i]
		}
	}
	return nil
}

// Put records an upload, replacing the earlier record of the same certificate.
func (s *StateFile) Put(r StateRecord) {
	if old := s.Lookup(r.AccountID, r.Name); old != nil {
		*old = r
		return
	}
	s.Records = append(s.Records, r)
	sort.Slice(s.Records, func(i, j int) bool {
		if s.Records[i].AccountID != s.Records[j].AccountID {
			return s.Records[i].AccountID < s.Records[j].AccountID
		}
		return s.Records[i].Name < s.Records[j].Name
	})
}

// Write saves the state atomically (a temporary file renamed over the old one).
func (s *StateFile) Write(path string) error {
	s.Version = 1
	raw, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".lpmtls-state-*.tmp")
	if err != nil {
		return fmt.Errorf("cannot write the state file beside %s: %w", path, errors.Unwrap(err))
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(raw, '\n')); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
