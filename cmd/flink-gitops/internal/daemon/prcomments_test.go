package daemon

import (
	"fmt"
	"testing"

	"github.com/flink-gitops/flink-gitops/lifecycle"
)

func TestPRStateIsACopyWithTheRecentlyRenderedCommits(t *testing.T) {
	d := &Daemon{records: map[string]*lifecycle.Record{}, problems: map[string][]string{}, failures: map[string]string{}}
	for i := 0; i < renderedHistory+10; i++ {
		d.noteRendered(fmt.Sprintf("c%d", i))
		d.noteRendered(fmt.Sprintf("c%d", i)) // a re-render of the same commit is not a new one
	}
	d.records["FlinkDeployment/ns/a"] = &lifecycle.Record{Kind: lifecycle.KindDeployment, Namespace: "ns", Name: "a"}
	d.problems["FlinkDeployment/ns/b"] = []string{"bad"}
	s := d.prState()
	if len(s.Rendered) != renderedHistory || s.Rendered[0] != "c10" || s.Commit() != fmt.Sprintf("c%d", renderedHistory+9) {
		t.Errorf("rendered = %d commits from %s to %s", len(s.Rendered), s.Rendered[0], s.Commit())
	}
	// The reporter's maps are its own: the daemon changing its maps does
	// not change a state already read.
	d.records["FlinkDeployment/ns/c"] = &lifecycle.Record{}
	delete(d.problems, "FlinkDeployment/ns/b")
	d.noteRendered("new")
	if len(s.Records) != 1 || len(s.Problems) != 1 || s.Commit() == "new" {
		t.Errorf("state changed under the reporter: %+v", s)
	}
}
