// SPDX-License-Identifier: UNLICENSED
pragma solidity 0.8.37;

/// @title IssuanceLog — on-chain anchors of polyroot DTA transparency logs
/// @notice Each DTA keeps its own Tessera log of issuance entries. Periodically it anchors the
/// latest checkpoint (size, root hash) here, so that an auditor can later prove that the log
/// only ever grew (consistency proofs between successive anchors). Only hashes go on chain.
///
/// Rules, and nothing more:
///   - the deployer is the owner, for ever; only the owner registers which single address may
///     anchor a log (and may move a log to another address, or to address(0) to freeze it);
///   - only that address may anchor the log, and only with a size strictly larger than the
///     last anchored one.
contract IssuanceLog {
    /// @dev One slot for size and timestamp, one for the root.
    struct Anchor {
        uint64 size;
        uint64 timestamp;
        bytes32 root;
    }

    /// @notice The deployer; the only address that may register anchorers. (Plain storage, not
    /// immutable, so the code on chain is byte for byte the committed deployedBytecode.)
    address public owner;

    /// @notice logID (SHA-256 of the log's origin string) => the address allowed to anchor it.
    mapping(bytes32 => address) public anchorer;

    mapping(bytes32 => Anchor) private anchors;

    event Registered(bytes32 indexed logID, address indexed anchorer);
    event Anchored(bytes32 indexed logID, uint64 size, bytes32 root, uint64 timestamp);

    error NotOwner();
    error NotAnchorer();
    error SizeNotGrowing(uint64 last, uint64 size);

    constructor() {
        owner = msg.sender;
    }

    /// @notice Sets the one address allowed to anchor logID (replacing any previous one).
    function register(bytes32 logID, address who) external {
        if (msg.sender != owner) revert NotOwner();
        anchorer[logID] = who;
        emit Registered(logID, who);
    }

    /// @notice Records a checkpoint of logID: its size and root hash.
    function anchor(bytes32 logID, uint64 size, bytes32 root) external {
        // An unregistered log has anchorer address(0), which no sender can be.
        if (msg.sender != anchorer[logID]) revert NotAnchorer();
        Anchor storage a = anchors[logID];
        if (size <= a.size) revert SizeNotGrowing(a.size, size);
        uint64 ts = uint64(block.timestamp);
        a.size = size;
        a.timestamp = ts;
        a.root = root;
        emit Anchored(logID, size, root, ts);
    }

    /// @notice The latest anchor of logID; all zero if it was never anchored.
    function latest(bytes32 logID) external view returns (uint64 size, bytes32 root, uint64 timestamp) {
        Anchor storage a = anchors[logID];
        return (a.size, a.root, a.timestamp);
    }
}
