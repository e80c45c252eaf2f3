// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title TEERegistry: the enclaves (TEEs) clients may trust, on the Alpha chain.
/// @notice The registry of today's public network (the devnet places it at the public address).
///   Each TEE is identified by
///   teeId = keccak256(publicKey), where publicKey is the DER SubjectPublicKeyInfo of the
///   enclave's RSA signing key, the same id the gateway puts in `tee_id` of every response.
///   Clients list the active TEEs of a type, pin the registered TLS certificate, and verify
///   response signatures with the registered key.
///   teeType 0 = LLM proxy, 1 = validator. `ohttpConfig` is the HPKE key an Oblivious HTTP client
///   seals requests to (all zero, with an empty key, when the enclave offers no OHTTP).
/// @dev Registration is restricted to the admin (the devnet's operator). The registering account
///   becomes the TEE's owner; the owner or the admin may heartbeat, disable and re-enable it and
///   set its OHTTP configuration. "Active" and "enabled" are the same here: the devnet expires no
///   heartbeat and revokes no measurement.
contract TEERegistry {
    uint8 public constant TEE_TYPE_LLM_PROXY = 0;
    uint8 public constant TEE_TYPE_VALIDATOR = 1;

    struct OhttpConfig {
        uint8 keyId;
        uint16 kemId;
        uint16 kdfId;
        uint16 aeadId;
        bytes publicKey;
        bytes keyConfig;
        uint256 registeredAt;
    }

    struct TEEInfo {
        address owner;
        address paymentAddress;
        string endpoint;
        bytes publicKey;
        bytes tlsCertificate;
        bytes32 pcrHash;
        uint8 teeType;
        bool enabled;
        uint256 registeredAt;
        uint256 lastHeartbeatAt;
        OhttpConfig ohttpConfig;
    }

    address public admin;
    bytes32[] private _teeIds;
    mapping(bytes32 => TEEInfo) private _tees;

    event TEERegistered(bytes32 indexed teeId, address indexed owner, uint8 indexed teeType, string endpoint);
    event TEEHeartbeat(bytes32 indexed teeId, uint256 timestamp);
    event TEEDisabled(bytes32 indexed teeId);
    event TEEEnabled(bytes32 indexed teeId);
    event OhttpConfigSet(bytes32 indexed teeId, uint8 keyId);
    event AdminChanged(address indexed previousAdmin, address indexed newAdmin);

    modifier onlyAdmin() {
        require(msg.sender == admin, "TEERegistry: caller is not the admin");
        _;
    }

    modifier onlyOwnerOrAdmin(bytes32 teeId) {
        TEEInfo storage tee = _tees[teeId];
        require(tee.registeredAt != 0, "TEERegistry: unknown TEE");
        require(msg.sender == tee.owner || msg.sender == admin, "TEERegistry: caller is not the TEE owner");
        _;
    }

    constructor(address initialAdmin) {
        require(initialAdmin != address(0), "TEERegistry: admin is the zero address");
        admin = initialAdmin;
        emit AdminChanged(address(0), initialAdmin);
    }

    function setAdmin(address newAdmin) external onlyAdmin {
        require(newAdmin != address(0), "TEERegistry: admin is the zero address");
        emit AdminChanged(admin, newAdmin);
        admin = newAdmin;
    }

    /// @notice Registers an enclave; returns teeId = keccak256(publicKey).
    function registerTEE(
        address paymentAddress,
        string calldata endpoint,
        bytes calldata publicKey,
        bytes calldata tlsCertificate,
        bytes32 pcrHash,
        uint8 teeType
    ) external onlyAdmin returns (bytes32 teeId) {
        require(publicKey.length > 0, "TEERegistry: empty public key");
        require(bytes(endpoint).length > 0, "TEERegistry: empty endpoint");
        require(teeType <= TEE_TYPE_VALIDATOR, "TEERegistry: unknown TEE type");
        teeId = keccak256(publicKey);
        require(_tees[teeId].registeredAt == 0, "TEERegistry: TEE already registered");
        TEEInfo storage tee = _tees[teeId];
        tee.owner = msg.sender;
        tee.paymentAddress = paymentAddress;
        tee.endpoint = endpoint;
        tee.publicKey = publicKey;
        tee.tlsCertificate = tlsCertificate;
        tee.pcrHash = pcrHash;
        tee.teeType = teeType;
        tee.enabled = true;
        tee.registeredAt = block.timestamp;
        tee.lastHeartbeatAt = block.timestamp;
        _teeIds.push(teeId);
        emit TEERegistered(teeId, msg.sender, teeType, endpoint);
    }

    /// @notice Records that the enclave is alive.
    function heartbeat(bytes32 teeId) external onlyOwnerOrAdmin(teeId) {
        _tees[teeId].lastHeartbeatAt = block.timestamp;
        emit TEEHeartbeat(teeId, block.timestamp);
    }

    function disableTEE(bytes32 teeId) external onlyOwnerOrAdmin(teeId) {
        require(_tees[teeId].enabled, "TEERegistry: TEE already disabled");
        _tees[teeId].enabled = false;
        emit TEEDisabled(teeId);
    }

    function enableTEE(bytes32 teeId) external onlyOwnerOrAdmin(teeId) {
        require(!_tees[teeId].enabled, "TEERegistry: TEE already enabled");
        _tees[teeId].enabled = true;
        emit TEEEnabled(teeId);
    }

    /// @notice Sets the HPKE key Oblivious HTTP clients seal requests to (a 32-byte X25519 key).
    function setOhttpConfig(
        bytes32 teeId,
        uint8 keyId,
        uint16 kemId,
        uint16 kdfId,
        uint16 aeadId,
        bytes calldata publicKey,
        bytes calldata keyConfig
    ) external onlyOwnerOrAdmin(teeId) {
        require(publicKey.length == 32, "TEERegistry: OHTTP public key must be 32 bytes");
        _tees[teeId].ohttpConfig = OhttpConfig({
            keyId: keyId,
            kemId: kemId,
            kdfId: kdfId,
            aeadId: aeadId,
            publicKey: publicKey,
            keyConfig: keyConfig,
            registeredAt: block.timestamp
        });
        emit OhttpConfigSet(teeId, keyId);
    }

    function getTEE(bytes32 teeId) external view returns (TEEInfo memory) {
        TEEInfo storage tee = _tees[teeId];
        require(tee.registeredAt != 0, "TEERegistry: unknown TEE");
        return tee;
    }

    function isTEEActive(bytes32 teeId) external view returns (bool) {
        TEEInfo storage tee = _tees[teeId];
        return tee.registeredAt != 0 && tee.enabled;
    }

    function isTEEEnabled(bytes32 teeId) external view returns (bool) {
        TEEInfo storage tee = _tees[teeId];
        return tee.registeredAt != 0 && tee.enabled;
    }

    /// @notice The enabled TEEs of one type, in registration order.
    function getActiveTEEs(uint8 teeType) external view returns (TEEInfo[] memory active) {
        uint256 total = _teeIds.length;
        uint256 found = 0;
        for (uint256 i = 0; i < total; ++i) {
            TEEInfo storage tee = _tees[_teeIds[i]];
            if (tee.enabled && tee.teeType == teeType) {
                ++found;
            }
        }
        active = new TEEInfo[](found);
        uint256 j = 0;
        for (uint256 i = 0; i < total && j < found; ++i) {
            TEEInfo storage tee = _tees[_teeIds[i]];
            if (tee.enabled && tee.teeType == teeType) {
                active[j++] = tee;
            }
        }
    }

    /// @notice Ids of the active TEEs of one type, in registration order (cheaper than getActiveTEEs).
    function getActiveTEEIds(uint8 teeType) external view returns (bytes32[] memory) {
        return _ids(teeType, true);
    }

    /// @notice Ids of the enabled TEEs of one type, in registration order.
    function getEnabledTEEs(uint8 teeType) external view returns (bytes32[] memory) {
        return _ids(teeType, true);
    }

    /// @notice Ids of every TEE of one type ever registered (enabled or not), in registration order.
    function getTEEsByType(uint8 teeType) external view returns (bytes32[] memory) {
        return _ids(teeType, false);
    }

    function _ids(uint8 teeType, bool enabledOnly) private view returns (bytes32[] memory ids) {
        uint256 total = _teeIds.length;
        bytes32[] memory buffer = new bytes32[](total);
        uint256 found = 0;
        for (uint256 i = 0; i < total; ++i) {
            TEEInfo storage tee = _tees[_teeIds[i]];
            if (tee.teeType == teeType && (tee.enabled || !enabledOnly)) {
                buffer[found++] = _teeIds[i];
            }
        }
        ids = new bytes32[](found);
        for (uint256 i = 0; i < found; ++i) {
            ids[i] = buffer[i];
        }
    }

    /// @notice Number of TEEs ever registered (enabled or not).
    function teeCount() external view returns (uint256) {
        return _teeIds.length;
    }

    /// @notice The id of the index-th registered TEE.
    function teeIdAt(uint256 index) external view returns (bytes32) {
        require(index < _teeIds.length, "TEERegistry: index out of range");
        return _teeIds[index];
    }
}
