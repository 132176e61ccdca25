module github.com/crossbuild-example/imdemo

go 1.22
