module github.com/medshare/medshare/cmd/medshare-chaincode

go 1.26.8

require (
	github.com/hyperledger/fabric-chaincode-go v0.0.0-20240704073638-9fb89180dc17
	github.com/hyperledger/fabric-protos-go v0.3.3
	github.com/medshare/medshare v0.0.0
	google.golang.org/protobuf v1.36.12
)

require (
	github.com/golang/protobuf v1.5.4 // indirect
	golang.org/x/net v0.60.0 // indirect
	golang.org/x/sys v0.48.0 // indirect
	golang.org/x/text v0.42.0 // indirect
	google.golang.org/genproto/googleapis/rpc v0.0.0-20260819154853-08b0e4226688 // indirect
	google.golang.org/grpc v1.84.0 // indirect
)

replace github.com/medshare/medshare => ../..
