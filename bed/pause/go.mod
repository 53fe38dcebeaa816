module svcbuild.dev/bed/pause

go 1.22
