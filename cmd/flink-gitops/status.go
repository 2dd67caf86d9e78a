package main

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"

	"sigs.k8s.io/yaml"

	"github.com/flink-gitops/flink-gitops/lifecycle"
	gitsync "github.com/flink-gitops/flink-gitops/sync"
)

func runStatus(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("status", "--repo URL [--branch flink-gitops/status]",
		"Reads the status branch of a repository and prints one line per resource:\n"+
			"lifecycle state, job state, last reconciled commit, newest savepoint and error.\n"+
			"\nExit codes: 0 all fine, 1 a resource is FAILED or has problems, 3 could not read the status branch.", stderr)
	repo := fs.String("repo", "", "repository URL (https://, http://, ssh://, file://)")
	branch := fs.String("branch", "flink-gitops/status", "status branch")
	user := fs.String("username", "", "HTTPS user")
	tokenFile := fs.String("token-file", "", "file holding the HTTPS password or token")
	tokenEnv := fs.String("token-env", "", "environment variable holding the HTTPS password or token")
	sshKey := fs.String("ssh-key-file", "", "SSH private key (ssh:// URLs)")
	knownHosts := fs.String("known-hosts-file", "", "known_hosts file (ssh:// URLs)")
	if code, done := parse(fs, args, stdout); done {
		return code
	}
	if *repo == "" {
		fmt.Fprintln(stderr, "status: --repo URL is required")
		return exitError
	}
	w, err := gitsync.NewStatusWriter(gitsync.StatusWriterOptions{URL: *repo, Branch: *branch,
		Auth: gitsync.Auth{Username: *user, TokenFile: *tokenFile, TokenEnv: *tokenEnv, SSHKeyFile: *sshKey, KnownHostsFile: *knownHosts}})
	if err != nil {
		fmt.Fprintf(stderr, "status: %v\n", err)
		return exitError
	}
	files, tip, err := w.Read(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "status: %v\n", err)
		return exitError
	}
	if tip == "" {
		fmt.Fprintf(stderr, "status: %s has no branch %s yet (has the daemon run?)\n", *repo, *branch)
		return exitError
	}
	rows, err := parseStatusFiles(files)
	if err != nil {
		fmt.Fprintf(stderr, "status: %v\n", err)
		return exitError
	}
	return printStatus(stdout, tip, rows)
}

// parseStatusFiles reads the per-resource files of a status branch.
func parseStatusFiles(files map[string][]byte) ([]lifecycle.ResourceStatus, error) {
	var rows []lifecycle.ResourceStatus
	for p, b := range files {
		if !strings.HasSuffix(p, ".yaml") || strings.Count(p, "/") != 2 {
			continue
		}
		var rs lifecycle.ResourceStatus
		if err := yaml.Unmarshal(b, &rs); err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		rows = append(rows, rs)
	}
	sort.Slice(rows, func(i, j int) bool {
		return lifecycle.StatusPath(rows[i].Kind, rows[i].Namespace, rows[i].Name) < lifecycle.StatusPath(rows[j].Kind, rows[j].Namespace, rows[j].Name)
	})
	return rows, nil
}

func printStatus(w io.Writer, tip string, rows []lifecycle.ResourceStatus) int {
	fmt.Fprintf(w, "status branch at %s\n\n", short(tip))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAMESPACE\tKIND\tNAME\tLIFECYCLE\tJOB\tRECONCILED\tLAST SAVEPOINT\tERROR")
	code := exitOK
	for _, r := range rows {
		sp := "-"
		if len(r.Savepoints) > 0 {
			sp = r.Savepoints[0].Path
		}
		if r.LifecycleState == "FAILED" || len(r.Problems) > 0 {
			code = exitFindings
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Namespace, r.Kind, r.Name, r.State(), dash(r.JobState), dash(short(r.LastReconciledCommit)), sp, dash(r.Trouble()))
	}
	tw.Flush()
	return code
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func short(s string) string {
	if len(s) > 12 {
		return s[:12]
	}
	return s
}
