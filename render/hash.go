package render

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
)

// SpecHash returns the stable hash of a spec: SHA-256 over its canonical
// JSON (keys sorted at every level, flinkConfiguration already flat), as 16
// hex characters. Two specs that differ only in key order, or in flat
// versus nested flinkConfiguration, have the same hash.
func SpecHash(spec any) (string, error) {
	b, err := canonicalJSON(spec)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8]), nil
}

// canonicalJSON encodes v with every object's keys sorted (encoding/json
// sorts map keys; the round trip through any turns structs into maps).
func canonicalJSON(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode spec: %w", err)
	}
	var generic any
	if err := json.Unmarshal(b, &generic); err != nil {
		return nil, fmt.Errorf("decode spec: %w", err)
	}
	return json.Marshal(generic)
}
