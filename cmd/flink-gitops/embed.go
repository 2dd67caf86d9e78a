package main

// The container image is a static binary on an empty base (deploy/image):
// the binary carries Mozilla's CA roots, used only where the system has
// none, and the time zone database (cron schedules may name a zone).
import (
	_ "time/tzdata"

	_ "golang.org/x/crypto/x509roots/fallback"
)
