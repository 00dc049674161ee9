// Code generated via abigen V2 - DO NOT EDIT.
// This file is a generated binding and any manual changes will be lost.

package ledger

import (
	"bytes"
	"errors"
	"math/big"

	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/accounts/abi/bind/v2"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
)

// Reference imports to suppress errors if they are not otherwise used.
var (
	_ = bytes.Equal
	_ = errors.New
	_ = big.NewInt
	_ = common.Big1
	_ = types.BloomLookup
	_ = abi.ConvertType
)

// IssuanceLogMetaData contains all meta data concerning the IssuanceLog contract.
var IssuanceLogMetaData = bind.MetaData{
	ABI: "[{\"inputs\":[],\"stateMutability\":\"nonpayable\",\"type\":\"constructor\"},{\"inputs\":[],\"name\":\"NotAnchorer\",\"type\":\"error\"},{\"inputs\":[],\"name\":\"NotOwner\",\"type\":\"error\"},{\"inputs\":[{\"internalType\":\"uint64\",\"name\":\"last\",\"type\":\"uint64\"},{\"internalType\":\"uint64\",\"name\":\"size\",\"type\":\"uint64\"}],\"name\":\"SizeNotGrowing\",\"type\":\"error\"},{\"anonymous\":false,\"inputs\":[{\"indexed\":true,\"internalType\":\"bytes32\",\"name\":\"logID\",\"type\":\"bytes32\"},{\"indexed\":false,\"internalType\":\"uint64\",\"name\":\"size\",\"type\":\"uint64\"},{\"indexed\":false,\"internalType\":\"bytes32\",\"name\":\"root\",\"type\":\"bytes32\"},{\"indexed\":false,\"internalType\":\"uint64\",\"name\":\"timestamp\",\"type\":\"uint64\"}],\"name\":\"Anchored\",\"type\":\"event\"},{\"anonymous\":false,\"inputs\":[{\"indexed\":true,\"internalType\":\"bytes32\",\"name\":\"logID\",\"type\":\"bytes32\"},{\"indexed\":true,\"internalType\":\"address\",\"name\":\"anchorer\",\"type\":\"address\"}],\"name\":\"Registered\",\"type\":\"event\"},{\"inputs\":[{\"internalType\":\"bytes32\",\"name\":\"logID\",\"type\":\"bytes32\"},{\"internalType\":\"uint64\",\"name\":\"size\",\"type\":\"uint64\"},{\"internalType\":\"bytes32\",\"name\":\"root\",\"type\":\"bytes32\"}],\"name\":\"anchor\",\"outputs\":[],\"stateMutability\":\"nonpayable\",\"type\":\"function\"},{\"inputs\":[{\"internalType\":\"bytes32\",\"name\":\"\",\"type\":\"bytes32\"}],\"name\":\"anchorer\",\"outputs\":[{\"internalType\":\"address\",\"name\":\"\",\"type\":\"address\"}],\"stateMutability\":\"view\",\"type\":\"function\"},{\"inputs\":[{\"internalType\":\"bytes32\",\"name\":\"logID\",\"type\":\"bytes32\"}],\"name\":\"latest\",\"outputs\":[{\"internalType\":\"uint64\",\"name\":\"size\",\"type\":\"uint64\"},{\"internalType\":\"bytes32\",\"name\":\"root\",\"type\":\"bytes32\"},{\"internalType\":\"uint64\",\"name\":\"timestamp\",\"type\":\"uint64\"}],\"stateMutability\":\"view\",\"type\":\"function\"},{\"inputs\":[],\"name\":\"owner\",\"outputs\":[{\"internalType\":\"address\",\"name\":\"\",\"type\":\"address\"}],\"stateMutability\":\"view\",\"type\":\"function\"},{\"inputs\":[{\"internalType\":\"bytes32\",\"name\":\"logID\",\"type\":\"bytes32\"},{\"internalType\":\"address\",\"name\":\"who\",\"type\":\"address\"}],\"name\":\"register\",\"outputs\":[],\"stateMutability\":\"nonpayable\",\"type\":\"function\"}]",
	ID:  "IssuanceLog",
	Bin: "0x6080604052348015600e575f5ffd5b505f80546001600160a01b031916331790556103738061002d5f395ff3fe608060405234801561000f575f5ffd5b5060043610610055575f3560e01c806370c127c61461005957806379feb1071461006e5780638da5cb5b146100db578063cfd60e6a14610105578063d22057a91461012d575b5f5ffd5b61006c6100673660046102d5565b610140565b005b6100ab61007c366004610316565b5f908152600260205260409020805460019091015467ffffffffffffffff808316939192600160401b90041690565b6040805167ffffffffffffffff948516815260208101939093529216918101919091526060015b60405180910390f35b5f546100ed906001600160a01b031681565b6040516001600160a01b0390911681526020016100d2565b6100ed610113366004610316565b60016020525f90815260409020546001600160a01b031681565b61006c61013b36600461032d565b610253565b5f838152600160205260409020546001600160a01b031633146101765760405163d46c421560e01b815260040160405180910390fd5b5f838152600260205260409020805467ffffffffffffffff908116908416116101cd57805460405163cfd88f7d60e01b815267ffffffffffffffff9182166004820152908416602482015260440160405180910390fd5b805467ffffffffffffffff8481166fffffffffffffffffffffffffffffffff199092168217600160401b429283169081029190911784556001840185905560408051938452602084018690528301529085907f10d64b358a2a34d1aefd3923dfecde63ee095436d398bd873df1fd341db427249060600160405180910390a25050505050565b5f546001600160a01b0316331461027d576040516330cd747160e01b815260040160405180910390fd5b5f8281526001602052604080822080546001600160a01b0319166001600160a01b0385169081179091559051909184917f7d917fcbc9a29a9705ff9936ffa599500e4fd902e4486bae317414fe967b307c9190a35050565b5f5f5f606084860312156102e7575f5ffd5b83359250602084013567ffffffffffffffff81168114610305575f5ffd5b929592945050506040919091013590565b5f60208284031215610326575f5ffd5b5035919050565b5f5f6040838503121561033e575f5ffd5b8235915060208301356001600160a01b038116811461035b575f5ffd5b80915050925092905056fea164736f6c6343000825000a",
}

// IssuanceLog is an auto generated Go binding around an Ethereum contract.
type IssuanceLog struct {
	abi abi.ABI
}

// GetABI returns the ABI associated with this contract binding.
func (c *IssuanceLog) GetABI() abi.ABI {
	return c.abi
}

// NewIssuanceLog creates a new instance of IssuanceLog.
func NewIssuanceLog() *IssuanceLog {
	parsed, err := IssuanceLogMetaData.ParseABI()
	if err != nil {
		panic(errors.New("invalid ABI: " + err.Error()))
	}
	return &IssuanceLog{abi: *parsed}
}

// Instance creates a wrapper for a deployed contract instance at the given address.
// Use this to create the instance object passed to abigen v2 library functions Call, Transact, etc.
func (c *IssuanceLog) Instance(backend bind.ContractBackend, addr common.Address) *bind.BoundContract {
	return bind.NewBoundContract(addr, c.abi, backend, backend, backend)
}

// PackAnchor is the Go binding used to pack the parameters required for calling
// the contract method with ID 0x70c127c6.  This method will panic if any
// invalid/nil inputs are passed.
//
// Solidity: function anchor(bytes32 logID, uint64 size, bytes32 root) returns()
func (issuanceLog *IssuanceLog) PackAnchor(logID [32]byte, size uint64, root [32]byte) []byte {
	enc, err := issuanceLog.abi.Pack("anchor", logID, size, root)
	if err != nil {
		panic(err)
	}
	return enc
}

// TryPackAnchor is the Go binding used to pack the parameters required for calling
// the contract method with ID 0x70c127c6.  This method will return an error
// if any inputs are invalid/nil.
//
// Solidity: function anchor(bytes32 logID, uint64 size, bytes32 root) returns()
func (issuanceLog *IssuanceLog) TryPackAnchor(logID [32]byte, size uint64, root [32]byte) ([]byte, error) {
	return issuanceLog.abi.Pack("anchor", logID, size, root)
}

// PackAnchorer is the Go binding used to pack the parameters required for calling
// the contract method with ID 0xcfd60e6a.  This method will panic if any
// invalid/nil inputs are passed.
//
// Solidity: function anchorer(bytes32 ) view returns(address)
func (issuanceLog *IssuanceLog) PackAnchorer(arg0 [32]byte) []byte {
	enc, err := issuanceLog.abi.Pack("anchorer", arg0)
	if err != nil {
		panic(err)
	}
	return enc
}

// TryPackAnchorer is the Go binding used to pack the parameters required for calling
// the contract method with ID 0xcfd60e6a.  This method will return an error
// if any inputs are invalid/nil.
//
// Solidity: function anchorer(bytes32 ) view returns(address)
func (issuanceLog *IssuanceLog) TryPackAnchorer(arg0 [32]byte) ([]byte, error) {
	return issuanceLog.abi.Pack("anchorer", arg0)
}

// UnpackAnchorer is the Go binding that unpacks the parameters returned
// from invoking the contract method with ID 0xcfd60e6a.
//
// Solidity: function anchorer(bytes32 ) view returns(address)
func (issuanceLog *IssuanceLog) UnpackAnchorer(data []byte) (common.Address, error) {
	out, err := issuanceLog.abi.Unpack("anchorer", data)
	if err != nil {
		return *new(common.Address), err
	}
	out0 := *abi.ConvertType(out[0], new(common.Address)).(*common.Address)
	return out0, nil
}

// PackLatest is the Go binding used to pack the parameters required for calling
// the contract method with ID 0x79feb107.  This method will panic if any
// invalid/nil inputs are passed.
//
// Solidity: function latest(bytes32 logID) view returns(uint64 size, bytes32 root, uint64 timestamp)
func (issuanceLog *IssuanceLog) PackLatest(logID [32]byte) []byte {
	enc, err := issuanceLog.abi.Pack("latest", logID)
	if err != nil {
		panic(err)
	}
	return enc
}

// TryPackLatest is the Go binding used to pack the parameters required for calling
// the contract method with ID 0x79feb107.  This method will return an error
// if any inputs are invalid/nil.
//
// Solidity: function latest(bytes32 logID) view returns(uint64 size, bytes32 root, uint64 timestamp)
func (issuanceLog *IssuanceLog) TryPackLatest(logID [32]byte) ([]byte, error) {
	return issuanceLog.abi.Pack("latest", logID)
}

// LatestOutput serves as a container for the return parameters of contract
// method Latest.
type LatestOutput struct {
	Size      uint64
	Root      [32]byte
	Timestamp uint64
}

// UnpackLatest is the Go binding that unpacks the parameters returned
// from invoking the contract method with ID 0x79feb107.
//
// Solidity: function latest(bytes32 logID) view returns(uint64 size, bytes32 root, uint64 timestamp)
func (issuanceLog *IssuanceLog) UnpackLatest(data []byte) (LatestOutput, error) {
	out, err := issuanceLog.abi.Unpack("latest", data)
	outstruct := new(LatestOutput)
	if err != nil {
		return *outstruct, err
	}
	outstruct.Size = *abi.ConvertType(out[0], new(uint64)).(*uint64)
	outstruct.Root = *abi.ConvertType(out[1], new([32]byte)).(*[32]byte)
	outstruct.Timestamp = *abi.ConvertType(out[2], new(uint64)).(*uint64)
	return *outstruct, nil
}

// PackOwner is the Go binding used to pack the parameters required for calling
// the contract method with ID 0x8da5cb5b.  This method will panic if any
// invalid/nil inputs are passed.
//
// Solidity: function owner() view returns(address)
func (issuanceLog *IssuanceLog) PackOwner() []byte {
	enc, err := issuanceLog.abi.Pack("owner")
	if err != nil {
		panic(err)
	}
	return enc
}

// TryPackOwner is the Go binding used to pack the parameters required for calling
// the contract method with ID 0x8da5cb5b.  This method will return an error
// if any inputs are invalid/nil.
//
// Solidity: function owner() view returns(address)
func (issuanceLog *IssuanceLog) TryPackOwner() ([]byte, error) {
	return issuanceLog.abi.Pack("owner")
}

// UnpackOwner is the Go binding that unpacks the parameters returned
// from invoking the contract method with ID 0x8da5cb5b.
//
// Solidity: function owner() view returns(address)
func (issuanceLog *IssuanceLog) UnpackOwner(data []byte) (common.Address, error) {
	out, err := issuanceLog.abi.Unpack("owner", data)
	if err != nil {
		return *new(common.Address), err
	}
	out0 := *abi.ConvertType(out[0], new(common.Address)).(*common.Address)
	return out0, nil
}

// PackRegister is the Go binding used to pack the parameters required for calling
// the contract method with ID 0xd22057a9.  This method will panic if any
// invalid/nil inputs are passed.
//
// Solidity: function register(bytes32 logID, address who) returns()
func (issuanceLog *IssuanceLog) PackRegister(logID [32]byte, who common.Address) []byte {
	enc, err := issuanceLog.abi.Pack("register", logID, who)
	if err != nil {
		panic(err)
	}
	return enc
}

// TryPackRegister is the Go binding used to pack the parameters required for calling
// the contract method with ID 0xd22057a9.  This method will return an error
// if any inputs are invalid/nil.
//
// Solidity: function register(bytes32 logID, address who) returns()
func (issuanceLog *IssuanceLog) TryPackRegister(logID [32]byte, who common.Address) ([]byte, error) {
	return issuanceLog.abi.Pack("register", logID, who)
}

// IssuanceLogAnchored represents a Anchored event raised by the IssuanceLog contract.
type IssuanceLogAnchored struct {
	LogID     [32]byte
	Size      uint64
	Root      [32]byte
	Timestamp uint64
	Raw       *types.Log // Blockchain specific contextual infos
}

const IssuanceLogAnchoredEventName = "Anchored"

// ContractEventName returns the user-defined event name.
func (IssuanceLogAnchored) ContractEventName() string {
	return IssuanceLogAnchoredEventName
}

// UnpackAnchoredEvent is the Go binding that unpacks the event data emitted
// by contract.
//
// Solidity: event Anchored(bytes32 indexed logID, uint64 size, bytes32 root, uint64 timestamp)
func (issuanceLog *IssuanceLog) UnpackAnchoredEvent(log *types.Log) (*IssuanceLogAnchored, error) {
	event := "Anchored"
	if len(log.Topics) == 0 {
		return nil, bind.ErrNoEventSignature
	}
	if log.Topics[0] != issuanceLog.abi.Events[event].ID {
		return nil, bind.ErrEventSignatureMismatch
	}
	out := new(IssuanceLogAnchored)
	if len(log.Data) > 0 {
		if err := issuanceLog.abi.UnpackIntoInterface(out, event, log.Data); err != nil {
			return nil, err
		}
	}
	var indexed abi.Arguments
	for _, arg := range issuanceLog.abi.Events[event].Inputs {
		if arg.Indexed {
			indexed = append(indexed, arg)
		}
	}
	if err := abi.ParseTopics(out, indexed, log.Topics[1:]); err != nil {
		return nil, err
	}
	out.Raw = log
	return out, nil
}

// IssuanceLogRegistered represents a Registered event raised by the IssuanceLog contract.
type IssuanceLogRegistered struct {
	LogID    [32]byte
	Anchorer common.Address
	Raw      *types.Log // Blockchain specific contextual infos
}

const IssuanceLogRegisteredEventName = "Registered"

// ContractEventName returns the user-defined event name.
func (IssuanceLogRegistered) ContractEventName() string {
	return IssuanceLogRegisteredEventName
}

// UnpackRegisteredEvent is the Go binding that unpacks the event data emitted
// by contract.
//
// Solidity: event Registered(bytes32 indexed logID, address indexed anchorer)
func (issuanceLog *IssuanceLog) UnpackRegisteredEvent(log *types.Log) (*IssuanceLogRegistered, error) {
	event := "Registered"
	if len(log.Topics) == 0 {
		return nil, bind.ErrNoEventSignature
	}
	if log.Topics[0] != issuanceLog.abi.Events[event].ID {
		return nil, bind.ErrEventSignatureMismatch
	}
	out := new(IssuanceLogRegistered)
	if len(log.Data) > 0 {
		if err := issuanceLog.abi.UnpackIntoInterface(out, event, log.Data); err != nil {
			return nil, err
		}
	}
	var indexed abi.Arguments
	for _, arg := range issuanceLog.abi.Events[event].Inputs {
		if arg.Indexed {
			indexed = append(indexed, arg)
		}
	}
	if err := abi.ParseTopics(out, indexed, log.Topics[1:]); err != nil {
		return nil, err
	}
	out.Raw = log
	return out, nil
}

// UnpackError attempts to decode the provided error data using user-defined
// error definitions.
func (issuanceLog *IssuanceLog) UnpackError(raw []byte) (any, error) {
	if bytes.Equal(raw[:4], issuanceLog.abi.Errors["NotAnchorer"].ID.Bytes()[:4]) {
		return issuanceLog.UnpackNotAnchorerError(raw[4:])
	}
	if bytes.Equal(raw[:4], issuanceLog.abi.Errors["NotOwner"].ID.Bytes()[:4]) {
		return issuanceLog.UnpackNotOwnerError(raw[4:])
	}
	if bytes.Equal(raw[:4], issuanceLog.abi.Errors["SizeNotGrowing"].ID.Bytes()[:4]) {
		return issuanceLog.UnpackSizeNotGrowingError(raw[4:])
	}
	return nil, errors.New("Unknown error")
}

// IssuanceLogNotAnchorer represents a NotAnchorer error raised by the IssuanceLog contract.
type IssuanceLogNotAnchorer struct {
}

// ErrorID returns the hash of canonical representation of the error's signature.
//
// Solidity: error NotAnchorer()
func IssuanceLogNotAnchorerErrorID() common.Hash {
	return common.HexToHash("0xd46c421551fe2266e1bb7beaeca933dc4d061345cf5687ce932b8304d8c06f44")
}

// UnpackNotAnchorerError is the Go binding used to decode the provided
// error data into the corresponding Go error struct.
//
// Solidity: error NotAnchorer()
func (issuanceLog *IssuanceLog) UnpackNotAnchorerError(raw []byte) (*IssuanceLogNotAnchorer, error) {
	out := new(IssuanceLogNotAnchorer)
	if err := issuanceLog.abi.UnpackIntoInterface(out, "NotAnchorer", raw); err != nil {
		return nil, err
	}
	return out, nil
}

// IssuanceLogNotOwner represents a NotOwner error raised by the IssuanceLog contract.
type IssuanceLogNotOwner struct {
}

// ErrorID returns the hash of canonical representation of the error's signature.
//
// Solidity: error NotOwner()
func IssuanceLogNotOwnerErrorID() common.Hash {
	return common.HexToHash("0x30cd74712f59d478562d48e2d35de830db72c60a63dd08ae59199eec990b5bc4")
}

// UnpackNotOwnerError is the Go binding used to decode the provided
// error data into the corresponding Go error struct.
//
// Solidity: error NotOwner()
func (issuanceLog *IssuanceLog) UnpackNotOwnerError(raw []byte) (*IssuanceLogNotOwner, error) {
	out := new(IssuanceLogNotOwner)
	if err := issuanceLog.abi.UnpackIntoInterface(out, "NotOwner", raw); err != nil {
		return nil, err
	}
	return out, nil
}

// IssuanceLogSizeNotGrowing represents a SizeNotGrowing error raised by the IssuanceLog contract.
type IssuanceLogSizeNotGrowing struct {
	Last uint64
	Size uint64
}

// ErrorID returns the hash of canonical representation of the error's signature.
//
// Solidity: error SizeNotGrowing(uint64 last, uint64 size)
func IssuanceLogSizeNotGrowingErrorID() common.Hash {
	return common.HexToHash("0xcfd88f7dd36902f879d3272f0f0fbfa3032fd2b2a22ae7a3e1ace745bc16f459")
}

// UnpackSizeNotGrowingError is the Go binding used to decode the provided
// error data into the corresponding Go error struct.
//
// Solidity: error SizeNotGrowing(uint64 last, uint64 size)
func (issuanceLog *IssuanceLog) UnpackSizeNotGrowingError(raw []byte) (*IssuanceLogSizeNotGrowing, error) {
	out := new(IssuanceLogSizeNotGrowing)
	if err := issuanceLog.abi.UnpackIntoInterface(out, "SizeNotGrowing", raw); err != nil {
		return nil, err
	}
	return out, nil
}

//lint:file-ignore ST1005 abigen writes errors.New("Unknown error"); this line is added by make contracts
