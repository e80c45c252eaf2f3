// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title OPGToken: the devnet's OPG, an ERC-20 with gasless approvals and transfers.
/// @notice Implements, from the public specifications:
///   - EIP-20 (balances, allowances, Transfer/Approval events), 18 decimals;
///   - EIP-712 typed-data signing, with the domain {name, version, chainId, verifyingContract}
///     and EIP-5267 `eip712Domain()` so wallets can discover it;
///   - EIP-2612 `permit` (allowance by signature; per-owner sequential nonces);
///   - EIP-3009 `transferWithAuthorization`, `receiveWithAuthorization` and `cancelAuthorization`
///     (transfers by signature; per-authorizer random 32-byte nonces, each usable once).
///   Every signature entry point exists twice: with (v, r, s) and with a `bytes signature`
///   (65-byte r||s||v for an externally owned account, or anything an EIP-1271 contract accepts).
/// @dev Revert reasons use the wording of Circle's USDC ("FiatTokenV2: …", "ERC20: …") on
///   purpose: x402 facilitators classify failures by matching those substrings, so the same
///   wording gives the same error codes on the devnet as against USDC on a public chain.
///   ECDSA signatures are accepted only with v in {27, 28} and a low s (s <= n/2, EIP-2), so
///   no signature has a second, malleated form.
contract OPGToken {
    // ---- EIP-712 type hashes -------------------------------------------------------------------

    bytes32 private constant _DOMAIN_TYPEHASH =
        keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)");
    bytes32 public constant PERMIT_TYPEHASH =
        keccak256("Permit(address owner,address spender,uint256 value,uint256 nonce,uint256 deadline)");
    bytes32 public constant TRANSFER_WITH_AUTHORIZATION_TYPEHASH = keccak256(
        "TransferWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)"
    );
    bytes32 public constant RECEIVE_WITH_AUTHORIZATION_TYPEHASH = keccak256(
        "ReceiveWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)"
    );
    bytes32 public constant CANCEL_AUTHORIZATION_TYPEHASH =
        keccak256("CancelAuthorization(address authorizer,bytes32 nonce)");

    /// @dev secp256k1 group order divided by two: the largest accepted s (EIP-2).
    uint256 private constant _HALF_CURVE_ORDER =
        0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0;
    /// @dev bytes4(keccak256("isValidSignature(bytes32,bytes)")), the EIP-1271 magic value.
    bytes4 private constant _EIP1271_MAGIC = 0x1626ba7e;

    // ---- state ---------------------------------------------------------------------------------

    string private _name;
    string private _symbol;
    string private _version;
    bytes32 private immutable _hashedName;
    bytes32 private immutable _hashedVersion;
    uint256 private immutable _deployChainId;
    address private immutable _deployAddress;
    bytes32 private immutable _deployDomainSeparator;

    address public owner;
    uint256 public totalSupply;
    mapping(address => uint256) public balanceOf;
    mapping(address => mapping(address => uint256)) public allowance;
    /// @notice EIP-2612 permit nonce of each owner.
    mapping(address => uint256) public nonces;
    mapping(address => mapping(bytes32 => bool)) private _authorizationUsed;

    // ---- events --------------------------------------------------------------------------------

    event Transfer(address indexed from, address indexed to, uint256 value);
    event Approval(address indexed owner, address indexed spender, uint256 value);
    event AuthorizationUsed(address indexed authorizer, bytes32 indexed nonce);
    event AuthorizationCanceled(address indexed authorizer, bytes32 indexed nonce);
    event OwnershipTransferred(address indexed previousOwner, address indexed newOwner);

    modifier onlyOwner() {
        require(msg.sender == owner, "OPGToken: caller is not the owner");
        _;
    }

    /// @param tokenName ERC-20 name, also the EIP-712 domain name ("OPG"; "OpenGradient" on Base).
    /// @param tokenSymbol ERC-20 symbol ("OPG").
    /// @param domainVersion EIP-712 domain version ("2"; "1" on Base), also returned by version().
    /// @param initialOwner the only account allowed to mint.
    constructor(
        string memory tokenName,
        string memory tokenSymbol,
        string memory domainVersion,
        address initialOwner
    ) {
        require(initialOwner != address(0), "OPGToken: owner is the zero address");
        _name = tokenName;
        _symbol = tokenSymbol;
        _version = domainVersion;
        bytes32 hashedName = keccak256(bytes(tokenName));
        bytes32 hashedVersion = keccak256(bytes(domainVersion));
        _hashedName = hashedName;
        _hashedVersion = hashedVersion;
        _deployChainId = block.chainid;
        _deployAddress = address(this);
        _deployDomainSeparator = _buildDomainSeparator(hashedName, hashedVersion);
        owner = initialOwner;
        emit OwnershipTransferred(address(0), initialOwner);
    }

    // ---- metadata ------------------------------------------------------------------------------

    function name() external view returns (string memory) {
        return _name;
    }

    function symbol() external view returns (string memory) {
        return _symbol;
    }

    function decimals() external pure returns (uint8) {
        return 18;
    }

    /// @notice The EIP-712 domain version (what USDC calls version()).
    function version() external view returns (string memory) {
        return _version;
    }

    // ---- EIP-712 -------------------------------------------------------------------------------

    /// @notice The EIP-712 domain separator for the current chain and address (recomputed when
    ///   either differs from deployment: a fork, or runtime code copied to another address).
    function DOMAIN_SEPARATOR() public view returns (bytes32) {
        if (block.chainid == _deployChainId && address(this) == _deployAddress) {
            return _deployDomainSeparator;
        }
        return _buildDomainSeparator(_hashedName, _hashedVersion);
    }

    /// @notice EIP-5267: the fields of this token's EIP-712 domain.
    /// @return fields bitmap 0x0f: name, version, chainId and verifyingContract are used.
    function eip712Domain()
        external
        view
        returns (
            bytes1 fields,
            string memory domainName,
            string memory domainVersion,
            uint256 chainId,
            address verifyingContract,
            bytes32 salt,
            uint256[] memory extensions
        )
    {
        return (hex"0f", _name, _version, block.chainid, address(this), bytes32(0), new uint256[](0));
    }

    function _buildDomainSeparator(bytes32 hashedName, bytes32 hashedVersion) private view returns (bytes32) {
        return keccak256(abi.encode(_DOMAIN_TYPEHASH, hashedName, hashedVersion, block.chainid, address(this)));
    }

    function _typedDataDigest(bytes32 structHash) private view returns (bytes32) {
        return keccak256(abi.encodePacked(hex"1901", DOMAIN_SEPARATOR(), structHash));
    }

    // ---- ERC-20 --------------------------------------------------------------------------------

    function transfer(address to, uint256 value) external returns (bool) {
        _transfer(msg.sender, to, value);
        return true;
    }

    function approve(address spender, uint256 value) external returns (bool) {
        _approve(msg.sender, spender, value);
        return true;
    }

    /// @notice Moves tokens using the caller's allowance; an allowance of 2**256-1 never decreases.
    function transferFrom(address from, address to, uint256 value) external returns (bool) {
        uint256 allowed = allowance[from][msg.sender];
        if (allowed != type(uint256).max) {
            require(allowed >= value, "ERC20: transfer amount exceeds allowance");
            unchecked {
                _approve(from, msg.sender, allowed - value);
            }
        }
        _transfer(from, to, value);
        return true;
    }

    function increaseAllowance(address spender, uint256 increment) external returns (bool) {
        _approve(msg.sender, spender, allowance[msg.sender][spender] + increment);
        return true;
    }

    function decreaseAllowance(address spender, uint256 decrement) external returns (bool) {
        uint256 current = allowance[msg.sender][spender];
        require(current >= decrement, "ERC20: decreased allowance below zero");
        unchecked {
            _approve(msg.sender, spender, current - decrement);
        }
        return true;
    }

    function _transfer(address from, address to, uint256 value) private {
        require(from != address(0), "ERC20: transfer from the zero address");
        require(to != address(0), "ERC20: transfer to the zero address");
        uint256 fromBalance = balanceOf[from];
        require(fromBalance >= value, "ERC20: transfer amount exceeds balance");
        unchecked {
            balanceOf[from] = fromBalance - value;
            balanceOf[to] += value; // cannot overflow: the sum of balances is totalSupply
        }
        emit Transfer(from, to, value);
    }

    function _approve(address holder, address spender, uint256 value) private {
        require(holder != address(0), "ERC20: approve from the zero address");
        require(spender != address(0), "ERC20: approve to the zero address");
        allowance[holder][spender] = value;
        emit Approval(holder, spender, value);
    }

    // ---- minting and ownership -----------------------------------------------------------------

    function mint(address to, uint256 value) external onlyOwner returns (bool) {
        _mint(to, value);
        return true;
    }

    /// @notice Mints amounts[i] to recipients[i]; one transaction to fund many accounts.
    function mintBatch(address[] calldata recipients, uint256[] calldata amounts) external onlyOwner {
        require(recipients.length == amounts.length, "OPGToken: length mismatch");
        for (uint256 i = 0; i < recipients.length; ++i) {
            _mint(recipients[i], amounts[i]);
        }
    }

    function transferOwnership(address newOwner) external onlyOwner {
        require(newOwner != address(0), "OPGToken: new owner is the zero address");
        emit OwnershipTransferred(owner, newOwner);
        owner = newOwner;
    }

    function _mint(address to, uint256 value) private {
        require(to != address(0), "ERC20: mint to the zero address");
        totalSupply += value;
        unchecked {
            balanceOf[to] += value;
        }
        emit Transfer(address(0), to, value);
    }

    // ---- EIP-2612 ------------------------------------------------------------------------------

    function permit(
        address holder,
        address spender,
        uint256 value,
        uint256 deadline,
        uint8 v,
        bytes32 r,
        bytes32 s
    ) external {
        _permit(holder, spender, value, deadline, abi.encodePacked(r, s, v));
    }

    function permit(address holder, address spender, uint256 value, uint256 deadline, bytes memory signature)
        external
    {
        _permit(holder, spender, value, deadline, signature);
    }

    function _permit(address holder, address spender, uint256 value, uint256 deadline, bytes memory signature)
        private
    {
        require(deadline >= block.timestamp, "FiatTokenV2: permit is expired");
        bytes32 structHash = keccak256(abi.encode(PERMIT_TYPEHASH, holder, spender, value, nonces[holder]++, deadline));
        require(_isValidSignature(holder, _typedDataDigest(structHash), signature), "EIP2612: invalid signature");
        _approve(holder, spender, value);
    }

    // ---- EIP-3009 ------------------------------------------------------------------------------

    /// @notice True once the authorizer's nonce has been used or canceled.
    function authorizationState(address authorizer, bytes32 nonce) external view returns (bool) {
        return _authorizationUsed[authorizer][nonce];
    }

    function transferWithAuthorization(
        address from,
        address to,
        uint256 value,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 nonce,
        uint8 v,
        bytes32 r,
        bytes32 s
    ) external {
        _transferWithAuthorization(
            TRANSFER_WITH_AUTHORIZATION_TYPEHASH, from, to, value, validAfter, validBefore, nonce, abi.encodePacked(r, s, v)
        );
    }

    function transferWithAuthorization(
        address from,
        address to,
        uint256 value,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 nonce,
        bytes memory signature
    ) external {
        _transferWithAuthorization(
            TRANSFER_WITH_AUTHORIZATION_TYPEHASH, from, to, value, validAfter, validBefore, nonce, signature
        );
    }

    /// @notice Like transferWithAuthorization, but only the payee may submit it (front-running safe
    ///   when the transfer is part of a larger call by the payee contract).
    function receiveWithAuthorization(
        address from,
        address to,
        uint256 value,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 nonce,
        uint8 v,
        bytes32 r,
        bytes32 s
    ) external {
        require(to == msg.sender, "FiatTokenV2: caller must be the payee");
        _transferWithAuthorization(
            RECEIVE_WITH_AUTHORIZATION_TYPEHASH, from, to, value, validAfter, validBefore, nonce, abi.encodePacked(r, s, v)
        );
    }

    function receiveWithAuthorization(
        address from,
        address to,
        uint256 value,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 nonce,
        bytes memory signature
    ) external {
        require(to == msg.sender, "FiatTokenV2: caller must be the payee");
        _transferWithAuthorization(
            RECEIVE_WITH_AUTHORIZATION_TYPEHASH, from, to, value, validAfter, validBefore, nonce, signature
        );
    }

    function cancelAuthorization(address authorizer, bytes32 nonce, uint8 v, bytes32 r, bytes32 s) external {
        _cancelAuthorization(authorizer, nonce, abi.encodePacked(r, s, v));
    }

    function cancelAuthorization(address authorizer, bytes32 nonce, bytes memory signature) external {
        _cancelAuthorization(authorizer, nonce, signature);
    }

    function _transferWithAuthorization(
        bytes32 typeHash,
        address from,
        address to,
        uint256 value,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 nonce,
        bytes memory signature
    ) private {
        require(block.timestamp > validAfter, "FiatTokenV2: authorization is not yet valid");
        require(block.timestamp < validBefore, "FiatTokenV2: authorization is expired");
        _requireUnusedAuthorization(from, nonce);
        bytes32 structHash = keccak256(abi.encode(typeHash, from, to, value, validAfter, validBefore, nonce));
        require(_isValidSignature(from, _typedDataDigest(structHash), signature), "FiatTokenV2: invalid signature");
        _authorizationUsed[from][nonce] = true;
        emit AuthorizationUsed(from, nonce);
        _transfer(from, to, value);
    }

    function _cancelAuthorization(address authorizer, bytes32 nonce, bytes memory signature) private {
        _requireUnusedAuthorization(authorizer, nonce);
        bytes32 structHash = keccak256(abi.encode(CANCEL_AUTHORIZATION_TYPEHASH, authorizer, nonce));
        require(
            _isValidSignature(authorizer, _typedDataDigest(structHash), signature), "FiatTokenV2: invalid signature"
        );
        _authorizationUsed[authorizer][nonce] = true;
        emit AuthorizationCanceled(authorizer, nonce);
    }

    function _requireUnusedAuthorization(address authorizer, bytes32 nonce) private view {
        require(!_authorizationUsed[authorizer][nonce], "FiatTokenV2: authorization is used or canceled");
    }

    // ---- signatures ----------------------------------------------------------------------------

    /// @dev True when `signature` is `signer`'s over `digest`: a canonical 65-byte ECDSA signature
    ///   that recovers to `signer`, or, when `signer` has code, whatever its EIP-1271
    ///   isValidSignature accepts (ECDSA is tried first so EIP-7702 delegated accounts keep working).
    function _isValidSignature(address signer, bytes32 digest, bytes memory signature) private view returns (bool) {
        if (signer == address(0)) {
            return false;
        }
        if (signature.length == 65 && _recover(digest, signature) == signer) {
            return true;
        }
        if (signer.code.length == 0) {
            return false;
        }
        (bool ok, bytes memory result) =
            signer.staticcall(abi.encodeWithSelector(_EIP1271_MAGIC, digest, signature));
        return ok && result.length >= 32 && bytes4(abi.decode(result, (bytes32))) == _EIP1271_MAGIC;
    }

    /// @dev ecrecover of a 65-byte r||s||v signature; address(0) for a malleable (high) s, a v other
    ///   than 27 or 28, or a signature the precompile cannot recover.
    function _recover(bytes32 digest, bytes memory signature) private pure returns (address) {
        bytes32 r;
        bytes32 s;
        uint8 v;
        assembly {
            r := mload(add(signature, 0x20))
            s := mload(add(signature, 0x40))
            v := byte(0, mload(add(signature, 0x60)))
        }
        if (uint256(s) > _HALF_CURVE_ORDER || (v != 27 && v != 28)) {
            return address(0);
        }
        return ecrecover(digest, v, r, s);
    }
}
