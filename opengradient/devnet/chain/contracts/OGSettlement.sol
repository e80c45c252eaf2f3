// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title OGSettlement: on-chain records of paid LLM requests, in the gateway's three modes.
/// @notice PROTOCOL.md section 2 settlement modes:
///   - private / `settle`: only hashes      -> recordSettlement        -> event Settled
///   - individual / `settle-metadata`: all  -> recordSettlementWithMetadata -> event SettledWithMetadata
///   - batch / `settle-batch`: a Merkle root -> recordBatch            -> event BatchSettled
///   `paymentTx` is the hash of the x402 payment transaction that paid for the request (zero when
///   there was none), `requestHash` and `outputHash` are the TEE hashes of PROTOCOL.md section 4.
///
///   Leaf and tree rule (for batches, and the key of individual records):
///     leaf   = keccak256(abi.encodePacked(requestHash, outputHash))
///     parent = keccak256(abi.encodePacked(min(a, b), max(a, b)))   (sorted pair, as uint256)
///   A tree level with an odd number of nodes carries its last node up unchanged; a batch of one
///   has root = leaf and an empty proof. Because pairs are sorted, a proof is just the list of
///   sibling hashes from the leaf up, with no left/right flags.
/// @dev Only the recorder (the gateway's operator account) may record. Individual settlements
///   also store the block they were recorded in, keyed by their leaf, so `settledAt` answers
///   "was this (request, output) pair settled?" without scanning logs.
contract OGSettlement {
    address public recorder;
    /// @notice Number of batches recorded; batch ids run from 1 to batchCount.
    uint256 public batchCount;
    /// @notice Number of individual settlements recorded (both modes).
    uint256 public settlementCount;

    mapping(uint256 => bytes32) private _batchRoots;
    mapping(uint256 => uint256) private _batchSizes;
    mapping(bytes32 => uint256) private _settledAt;

    event Settled(
        bytes32 indexed paymentTx,
        bytes32 indexed requestHash,
        address indexed payer,
        bytes32 outputHash,
        uint256 amount
    );
    event SettledWithMetadata(
        bytes32 indexed paymentTx,
        bytes32 indexed requestHash,
        address indexed payer,
        bytes32 outputHash,
        uint256 amount,
        string model,
        string input,
        string output
    );
    event BatchSettled(uint256 indexed batchId, bytes32 merkleRoot, uint256 count);
    event RecorderChanged(address indexed previousRecorder, address indexed newRecorder);

    modifier onlyRecorder() {
        require(msg.sender == recorder, "OGSettlement: caller is not the recorder");
        _;
    }

    constructor(address initialRecorder) {
        require(initialRecorder != address(0), "OGSettlement: recorder is the zero address");
        recorder = initialRecorder;
        emit RecorderChanged(address(0), initialRecorder);
    }

    /// @notice Hands recording rights to another account (the current recorder only).
    function setRecorder(address newRecorder) external onlyRecorder {
        require(newRecorder != address(0), "OGSettlement: recorder is the zero address");
        emit RecorderChanged(recorder, newRecorder);
        recorder = newRecorder;
    }

    /// @notice Private mode: record the hashes of one paid request.
    function recordSettlement(
        bytes32 paymentTx,
        bytes32 requestHash,
        bytes32 outputHash,
        address payer,
        uint256 amount
    ) external onlyRecorder {
        _markSettled(requestHash, outputHash);
        emit Settled(paymentTx, requestHash, payer, outputHash, amount);
    }

    /// @notice Individual mode: record one paid request with its model, input and output in full.
    function recordSettlementWithMetadata(
        bytes32 paymentTx,
        bytes32 requestHash,
        bytes32 outputHash,
        address payer,
        uint256 amount,
        string calldata model,
        string calldata input,
        string calldata output
    ) external onlyRecorder {
        _markSettled(requestHash, outputHash);
        emit SettledWithMetadata(paymentTx, requestHash, payer, outputHash, amount, model, input, output);
    }

    /// @notice Batch mode: record the Merkle root of `count` leaves; returns the new batch id.
    function recordBatch(bytes32 merkleRoot, uint256 count) external onlyRecorder returns (uint256 batchId) {
        require(merkleRoot != bytes32(0), "OGSettlement: empty Merkle root");
        require(count > 0, "OGSettlement: empty batch");
        batchId = ++batchCount;
        _batchRoots[batchId] = merkleRoot;
        _batchSizes[batchId] = count;
        emit BatchSettled(batchId, merkleRoot, count);
    }

    /// @notice Merkle root of a batch (zero for an unknown id).
    function batchRoot(uint256 batchId) external view returns (bytes32) {
        return _batchRoots[batchId];
    }

    /// @notice Number of leaves of a batch (zero for an unknown id).
    function batchSize(uint256 batchId) external view returns (uint256) {
        return _batchSizes[batchId];
    }

    /// @notice Block number an individual (request, output) settlement was recorded in; zero if never.
    function settledAt(bytes32 requestHash, bytes32 outputHash) external view returns (uint256) {
        return _settledAt[leafHash(requestHash, outputHash)];
    }

    /// @notice The leaf of a (request, output) pair: keccak256(abi.encodePacked(requestHash, outputHash)).
    function leafHash(bytes32 requestHash, bytes32 outputHash) public pure returns (bytes32) {
        return keccak256(abi.encodePacked(requestHash, outputHash));
    }

    /// @notice True when `proof` (sibling hashes, leaf to root) links `leaf` to `root`.
    function verifyBatchLeaf(bytes32 root, bytes32 leaf, bytes32[] calldata proof) public pure returns (bool) {
        bytes32 node = leaf;
        for (uint256 i = 0; i < proof.length; ++i) {
            bytes32 sibling = proof[i];
            node = node <= sibling
                ? keccak256(abi.encodePacked(node, sibling))
                : keccak256(abi.encodePacked(sibling, node));
        }
        return node == root;
    }

    /// @notice True when (requestHash, outputHash) is in recorded batch `batchId` under `proof`.
    function verifyBatchMember(uint256 batchId, bytes32 requestHash, bytes32 outputHash, bytes32[] calldata proof)
        external
        view
        returns (bool)
    {
        bytes32 root = _batchRoots[batchId];
        return root != bytes32(0) && verifyBatchLeaf(root, leafHash(requestHash, outputHash), proof);
    }

    function _markSettled(bytes32 requestHash, bytes32 outputHash) private {
        settlementCount += 1;
        bytes32 leaf = leafHash(requestHash, outputHash);
        if (_settledAt[leaf] == 0) {
            _settledAt[leaf] = block.number;
        }
    }
}
