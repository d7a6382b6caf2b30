// Package paramstore is the SSM Parameter Store tier of the token/domain cache: plain
// get/put/delete by name, with AWS's "not found" and "already exists" turned into
// values a cache can branch on, and the removal of a whole prefix at stack teardown.
package paramstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
)

// ErrExists is returned by Put with overwrite=false when the name is taken: the signal
// a lease holder election relies on.
var ErrExists = errors.New("paramstore: parameter exists")

// API is the slice of *ssm.Client this package needs.
type API interface {
	GetParameter(ctx context.Context, params *ssm.GetParameterInput, optFns ...func(*ssm.Options)) (*ssm.GetParameterOutput, error)
	GetParameters(ctx context.Context, params *ssm.GetParametersInput, optFns ...func(*ssm.Options)) (*ssm.GetParametersOutput, error)
	PutParameter(ctx context.Context, params *ssm.PutParameterInput, optFns ...func(*ssm.Options)) (*ssm.PutParameterOutput, error)
	DeleteParameter(ctx context.Context, params *ssm.DeleteParameterInput, optFns ...func(*ssm.Options)) (*ssm.DeleteParameterOutput, error)
	GetParametersByPath(ctx context.Context, params *ssm.GetParametersByPathInput, optFns ...func(*ssm.Options)) (*ssm.GetParametersByPathOutput, error)
	DeleteParameters(ctx context.Context, params *ssm.DeleteParametersInput, optFns ...func(*ssm.Options)) (*ssm.DeleteParametersOutput, error)
}

// maxBatch is SSM's limit on GetParametersByPath's page and DeleteParameters' names.
const maxBatch = 10

// Store reads and writes parameters. Values never appear in its errors.
type Store struct {
	api      API
	kmsKeyID string
}

// New returns a Store. kmsKeyID, when set, encrypts SecureStrings with that key instead
// of the account's default alias/aws/ssm.
func New(api API, kmsKeyID string) *Store {
	return &Store{api: api, kmsKeyID: kmsKeyID}
}

// Get returns the decrypted value of name; a missing parameter is found=false, not an
// error, because a cold cache is the normal case.
func (s *Store) Get(ctx context.Context, name string) (value string, found bool, err error) {
	decrypt := true
	out, err := s.api.GetParameter(ctx, &ssm.GetParameterInput{Name: &name, WithDecryption: &decrypt})
	if err != nil {
		var nf *ssmtypes.ParameterNotFound
		if errors.As(err, &nf) {
			return "", false, nil
		}
		return "", false, fmt.Errorf("paramstore: get %q: %w", name, err)
	}
	if out.Parameter == nil || out.Parameter.Value == nil {
		return "", false, fmt.Errorf("paramstore: get %q: answer has no value", name)
	}
	return *out.Parameter.Value, true, nil
}

// MaxGetMany is how many names one GetMany may read (GetParameters' limit).
const MaxGetMany = 10

// GetMany returns the decrypted values of the names that exist, in one GetParameters
// call: a missing name is absent from the map (SSM lists it as invalid), not an error.
func (s *Store) GetMany(ctx context.Context, names []string) (map[string]string, error) {
	if len(names) == 0 {
		return map[string]string{}, nil
	}
	if len(names) > MaxGetMany {
		return nil, fmt.Errorf("paramstore: get %d names at once, at most %d", len(names), MaxGetMany)
	}
	decrypt := true
	out, err := s.api.GetParameters(ctx, &ssm.GetParametersInput{Names: names, WithDecryption: &decrypt})
	if err != nil {
		return nil, fmt.Errorf("paramstore: get %q: %w", names, err)
	}
	vals := make(map[string]string, len(out.Parameters))
	for _, p := range out.Parameters {
		if p.Name == nil || p.Value == nil {
			return nil, fmt.Errorf("paramstore: get %q: answer has a parameter without a name or value", names)
		}
		vals[*p.Name] = *p.Value
	}
	return vals, nil
}

// Put writes value as a SecureString when secure, else as a String. With
// overwrite=false an existing name yields an error matching ErrExists.
func (s *Store) Put(ctx context.Context, name, value string, secure, overwrite bool) error {
	in := &ssm.PutParameterInput{
		Name:      &name,
		Value:     &value,
		Type:      ssmtypes.ParameterTypeString,
		Overwrite: &overwrite,
	}
	if secure {
		in.Type = ssmtypes.ParameterTypeSecureString
		if s.kmsKeyID != "" {
			in.KeyId = &s.kmsKeyID
		}
	}
	if _, err := s.api.PutParameter(ctx, in); err != nil {
		var ae *ssmtypes.ParameterAlreadyExists
		if errors.As(err, &ae) {
			return fmt.Errorf("%w: %q", ErrExists, name)
		}
		return fmt.Errorf("paramstore: put %q: %w", name, err)
	}
	return nil
}

// Delete removes name; deleting what is already gone succeeds, since invalidation may
// race with another environment doing the same.
func (s *Store) Delete(ctx context.Context, name string) error {
	if _, err := s.api.DeleteParameter(ctx, &ssm.DeleteParameterInput{Name: &name}); err != nil {
		var nf *ssmtypes.ParameterNotFound
		if errors.As(err, &nf) {
			return nil
		}
		return fmt.Errorf("paramstore: delete %q: %w", name, err)
	}
	return nil
}

// DeleteTree removes every parameter under prefix, at any depth, and returns how many
// it deleted. The names are all read first (pages of 10) and then deleted in batches of
// 10: deleting while paging could shift what the next page holds. A name already gone
// counts as done.
func (s *Store) DeleteTree(ctx context.Context, prefix string) (int, error) {
	var names []string
	recursive, max := true, int32(maxBatch)
	in := &ssm.GetParametersByPathInput{Path: &prefix, Recursive: &recursive, MaxResults: &max}
	for {
		out, err := s.api.GetParametersByPath(ctx, in)
		if err != nil {
			return 0, fmt.Errorf("paramstore: list %q: %w", prefix, err)
		}
		for _, p := range out.Parameters {
			if p.Name != nil {
				names = append(names, *p.Name)
			}
		}
		if out.NextToken == nil || *out.NextToken == "" {
			break
		}
		in.NextToken = out.NextToken
	}
	deleted := 0
	for start := 0; start < len(names); start += maxBatch {
		batch := names[start:min(start+maxBatch, len(names))]
		out, err := s.api.DeleteParameters(ctx, &ssm.DeleteParametersInput{Names: batch})
		if err != nil {
			return deleted, fmt.Errorf("paramstore: delete %d parameters under %q: %w", len(batch), prefix, err)
		}
		deleted += len(out.DeletedParameters)
	}
	return deleted, nil
}
