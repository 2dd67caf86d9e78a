package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/flink-gitops/flink-gitops/cmd/flink-gitops/internal/daemon"
	"github.com/flink-gitops/flink-gitops/config"
)

func runDaemon(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("run", "--config FILE [--set key=value ...]",
		"Runs the reconciler: polls the Git repository, renders its entry points, reconciles every\n"+
			"FlinkDeployment and FlinkSessionJob, and publishes status to the status branch.\n"+
			"The config file is watched and reloaded live (see the README for which keys apply live).\n"+
			"SIGINT/SIGTERM finish the passes in flight (their state is persisted) and exit.\n\n"+
			"Exit codes: 0 stopped cleanly, 2 invalid config, 3 could not start or run.", stderr)
	file := fs.String("config", "", "daemon config file (YAML); required")
	overrides := config.BindFlags(fs.FlagSet)
	if code, done := parse(fs, args, stdout); done {
		return code
	}
	if *file == "" {
		fmt.Fprintln(stderr, "run: --config FILE is required")
		return exitError
	}
	src := config.Sources{File: *file, Environ: os.Environ(), Set: overrides()}
	cfg, err := config.Load(src)
	if err != nil {
		var cerr *config.Error
		if errors.As(err, &cerr) {
			fmt.Fprintln(stderr, err)
			return exitInvalid
		}
		fmt.Fprintf(stderr, "run: %v\n", err)
		return exitError
	}
	var level slog.LevelVar
	log := config.NewLogger(stderr, cfg.Log, &level)
	store := config.NewStore(cfg)
	config.FollowLogLevel(store, &level)

	d, err := daemon.New(store, log)
	if err != nil {
		log.Error("cannot start", "err", err)
		return exitError
	}
	wctx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	go func() {
		if err := config.NewWatcher(store, src, log.With("component", "config")).Run(wctx); err != nil {
			log.Error("config watcher stopped", "err", err)
		}
	}()
	if err := d.Run(ctx); err != nil {
		log.Error("daemon stopped", "err", err)
		return exitError
	}
	log.Info("stopped")
	return exitOK
}
