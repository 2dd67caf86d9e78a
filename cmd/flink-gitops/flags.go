package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/spf13/pflag"
)

// flagSet is a subcommand's flags plus its help text.
type flagSet struct {
	*pflag.FlagSet
	name, usageLine, help string
	stderr                io.Writer
}

// newFlags returns a flag set for a subcommand; --help prints the summary,
// the usage line and the flags to stdout.
func newFlags(name, usageLine, help string, stderr io.Writer) *flagSet {
	fs := pflag.NewFlagSet(name, pflag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are printed by parse
	fs.Usage = func() {}     // printed by parse, to the right stream
	return &flagSet{FlagSet: fs, name: name, usageLine: usageLine, help: help, stderr: stderr}
}

func (fs *flagSet) printUsage(w io.Writer) {
	fmt.Fprintf(w, "Usage: flink-gitops %s %s\n\n%s\n\nFlags:\n%s", fs.name, fs.usageLine, fs.help, fs.FlagUsages())
}

// parse parses args; done reports that the command should return code now
// (after --help, or after a usage error it has printed).
func parse(fs *flagSet, args []string, stdout io.Writer) (code int, done bool) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			fs.printUsage(stdout)
			return exitOK, true
		}
		fmt.Fprintf(fs.stderr, "flink-gitops %s: %v\nRun 'flink-gitops %s --help' for usage.\n", fs.name, err, fs.name)
		return exitError, true
	}
	return exitOK, false
}
