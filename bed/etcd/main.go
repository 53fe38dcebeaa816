// Command etcd is the etcd server, built from its Go module for the svcbuild test bed
// (Debian's etcd 3.4 is older than what recent kube-apiservers expect).
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
