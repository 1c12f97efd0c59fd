// Command crm serves the CRM API; see package server/cli for its configuration
// and subcommands (crm -help, crm seed -help, crm engine -help).
package main

import (
	"os"

	"github.com/opencrm/crm/server/cli"
)

func main() { os.Exit(cli.Main()) }
