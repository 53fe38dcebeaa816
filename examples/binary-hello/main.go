// Example prebuilt executable for the binary provider: build it with
//
//	CGO_ENABLED=0 go build -o hello-server main.go
//
// and put hello-server next to assets/ in a project directory. It serves assets/index.html
// under CONTEXT_ROOT on PORT.
package main

import (
	"log"
	"net/http"
	"os"
	"path/filepath"
	"strings"
)

func main() {
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	root := strings.TrimRight(os.Getenv("CONTEXT_ROOT"), "/")
	exe, err := os.Executable()
	if err != nil {
		log.Fatal(err)
	}
	page, err := os.ReadFile(filepath.Join(filepath.Dir(exe), "assets", "index.html"))
	if err != nil {
		log.Fatal(err)
	}
	http.HandleFunc(root+"/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		_, _ = w.Write(page)
	})
	log.Printf("binary-hello listening on %s under %s/", port, root)
	log.Fatal(http.ListenAndServe(":"+port, nil))
}
