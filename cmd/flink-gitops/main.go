// Command flink-gitops is a pull-based GitOps reconciler for Apache Flink on
// Kubernetes: it renders FlinkDeployment and FlinkSessionJob specs from a Git
// repository and deploys, upgrades and savepoints Flink clusters to match.
//
// Exit codes, for every subcommand (each --help says which it uses):
//
//	0  success (plan: valid and nothing would change; validate: valid)
//	1  changes or findings (plan: something would change; status: something failed)
//	2  invalid input (a spec or the daemon config is invalid)
//	3  could not run (bad usage, unreadable input, unreachable cluster, …)
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"syscall"
)

// Exit codes shared by all subcommands.
const (
	exitOK       = 0
	exitChanges  = 1
	exitFindings = 1
	exitInvalid  = 2
	exitError    = 3
)

// command is one subcommand: it parses its own flags from args and returns
// the process exit code.
type command struct {
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) int
}

var commands = map[string]command{
	"run":      {"run the reconciler daemon", runDaemon},
	"plan":     {"render a repository and print the resources and the actions that would run", runPlan},
	"validate": {"check a daemon config file (and, with --repo, the specs of a repository)", runValidate},
	"status":   {"print the status table from a repository's status branch", runStatus},
	"version":  {"print the version", runVersion},
}

func main() {
	sealNetwork()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := dispatch(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func dispatch(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return exitError
	}
	switch args[0] {
	case "-h", "--help", "help":
		usage(stdout)
		return exitOK
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "flink-gitops: unknown command %q\n\n", args[0])
		usage(stderr)
		return exitError
	}
	return cmd.run(ctx, args[1:], stdout, stderr)
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "flink-gitops: GitOps for Apache Flink on Kubernetes")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Usage: flink-gitops <command> [flags]   (flink-gitops <command> --help for its flags)")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Commands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-9s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Exit codes: 0 ok, 1 changes or findings, 2 invalid spec or config, 3 could not run.")
}
