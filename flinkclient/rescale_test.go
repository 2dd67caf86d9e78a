package flinkclient

import (
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
)

// TestSetResourceRequirementsRefusesBadBounds checks that bounds Flink
// would misread are refused before anything is sent.
func TestSetResourceRequirementsRefusesBadBounds(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { calls.Add(1) }))
	defer srv.Close()
	c := New(srv.URL)
	job, v := NewJobID(), NewJobID()
	cases := []struct {
		name string
		job  string
		req  ResourceRequirements
	}{
		{"no vertices", job, ResourceRequirements{}},
		{"lower bound 0", job, ResourceRequirements{v: {LowerBound: 0, UpperBound: 2}}},
		{"upper below lower", job, ResourceRequirements{v: {LowerBound: 3, UpperBound: 2}}},
		{"vertex id not hex", job, ResourceRequirements{"../x": {LowerBound: 1, UpperBound: 2}}},
		{"job id not hex", "../jobs", ResourceRequirements{v: {LowerBound: 1, UpperBound: 2}}},
	}
	for _, tc := range cases {
		err := c.SetResourceRequirements(ctx(t), tc.job, tc.req)
		if KindOf(err) != KindBadRequest {
			t.Errorf("%s: err = %v, want a bad request", tc.name, err)
		}
	}
	if n := calls.Load(); n != 0 {
		t.Errorf("%d requests sent for refused input", n)
	}
}
