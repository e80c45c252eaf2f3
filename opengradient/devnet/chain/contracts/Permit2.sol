// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @dev The slice of ERC-20 that Permit2 moves tokens with.
interface IPermit2Token {
    function transferFrom(address from, address to, uint256 value) external returns (bool);
}

/// @dev EIP-1271: signature validation by contract accounts.
interface IPermit2ERC1271 {
    function isValidSignature(bytes32 digest, bytes calldata signature) external view returns (bytes4);
}

/// @title Permit2 (SignatureTransfer subset): token transfers authorised by one-time signatures.
/// @notice The devnet's implementation, written from the public interface of the canonical Permit2
///   (0x000000000022D473030F116dDEE9F6B43aC78BA3), of what x402's `upto` scheme uses:
///   - `permitWitnessTransferFrom`: the spender named in an owner's EIP-712
///     `PermitWitnessTransferFrom` signature moves up to the permitted amount of the owner's tokens,
///     the signature also covering a caller-defined witness struct;
///   - `permitTransferFrom`: the same without a witness (`PermitTransferFrom`);
///   - unordered nonces: a 256-bit nonce is (word = nonce >> 8, bit = nonce & 0xff) in
///     `nonceBitmap[owner][word]`; each is usable once, in any order, and an owner can burn nonces
///     in advance with `invalidateUnorderedNonces`;
///   - EIP-712 domain {name: "Permit2", chainId, verifyingContract} (no version).
///   Owners grant this contract an ordinary ERC-20 allowance once (`approve(Permit2, amount)`);
///   Permit2 then pulls with `transferFrom`, so the allowance shrinks by what each transfer moves.
/// @dev No constructor and no immutables: the runtime code alone is placed at the canonical address
///   at genesis, so the domain separator is computed from `block.chainid` and `address(this)` on
///   each call. Errors are the canonical contract's custom errors (same names, so the same
///   selectors). Signatures follow its rules: an owner without code signs with ECDSA (65-byte
///   r||s||v, or 64-byte EIP-2098 r||vs); an owner with code is asked through EIP-1271.
contract Permit2 {
    struct TokenPermissions {
        address token;
        uint256 amount;
    }

    struct PermitTransferFrom {
        TokenPermissions permitted;
        uint256 nonce;
        uint256 deadline;
    }

    struct SignatureTransferDetails {
        address to;
        uint256 requestedAmount;
    }

    bytes32 private constant _DOMAIN_TYPEHASH =
        keccak256("EIP712Domain(string name,uint256 chainId,address verifyingContract)");
    bytes32 private constant _HASHED_NAME = keccak256("Permit2");
    bytes32 public constant TOKEN_PERMISSIONS_TYPEHASH = keccak256("TokenPermissions(address token,uint256 amount)");
    bytes32 public constant PERMIT_TRANSFER_FROM_TYPEHASH = keccak256(
        "PermitTransferFrom(TokenPermissions permitted,address spender,uint256 nonce,uint256 deadline)"
        "TokenPermissions(address token,uint256 amount)"
    );
    /// @notice The head of every witness type string; the caller supplies the rest, e.g.
    ///   "Witness witness)TokenPermissions(address token,uint256 amount)Witness(…)".
    string public constant PERMIT_WITNESS_TRANSFER_FROM_TYPE_STUB =
        "PermitWitnessTransferFrom(TokenPermissions permitted,address spender,uint256 nonce,uint256 deadline,";

    /// @notice Used-nonce bits: owner => word position => bitmap.
    mapping(address => mapping(uint256 => uint256)) public nonceBitmap;

    event UnorderedNonceInvalidation(address indexed owner, uint256 word, uint256 mask);

    error SignatureExpired(uint256 signatureDeadline);
    error InvalidAmount(uint256 maxAmount);
    error InvalidNonce();
    error InvalidSignature();
    error InvalidSignatureLength();
    error InvalidSigner();
    error InvalidContractSignature();
    error TransferFailed();

    /// @notice The EIP-712 domain separator on this chain at this address.
    function DOMAIN_SEPARATOR() public view returns (bytes32) {
        return keccak256(abi.encode(_DOMAIN_TYPEHASH, _HASHED_NAME, block.chainid, address(this)));
    }

    /// @notice Move tokens on the strength of `owner`'s `PermitTransferFrom` signature; the caller
    ///   must be the spender it names.
    function permitTransferFrom(
        PermitTransferFrom calldata permit,
        SignatureTransferDetails calldata transferDetails,
        address owner,
        bytes calldata signature
    ) external {
        bytes32 structHash = keccak256(
            abi.encode(PERMIT_TRANSFER_FROM_TYPEHASH, _hashTokenPermissions(permit.permitted), msg.sender,
                permit.nonce, permit.deadline)
        );
        _transfer(permit, transferDetails, owner, structHash, signature);
    }

    /// @notice Move tokens on the strength of `owner`'s `PermitWitnessTransferFrom` signature, whose
    ///   witness is `witness` (the struct hash) of the type `witnessTypeString` completes.
    function permitWitnessTransferFrom(
        PermitTransferFrom calldata permit,
        SignatureTransferDetails calldata transferDetails,
        address owner,
        bytes32 witness,
        string calldata witnessTypeString,
        bytes calldata signature
    ) external {
        bytes32 typeHash = keccak256(abi.encodePacked(PERMIT_WITNESS_TRANSFER_FROM_TYPE_STUB, witnessTypeString));
        bytes32 structHash = keccak256(
            abi.encode(typeHash, _hashTokenPermissions(permit.permitted), msg.sender, permit.nonce,
                permit.deadline, witness)
        );
        _transfer(permit, transferDetails, owner, structHash, signature);
    }

    /// @notice Burn the caller's nonces `mask` in word `wordPos` (bits set in `mask` become used).
    function invalidateUnorderedNonces(uint256 wordPos, uint256 mask) external {
        nonceBitmap[msg.sender][wordPos] |= mask;
        emit UnorderedNonceInvalidation(msg.sender, wordPos, mask);
    }

    // ---- internals -----------------------------------------------------------------------------

    function _hashTokenPermissions(TokenPermissions calldata permitted) private pure returns (bytes32) {
        return keccak256(abi.encode(TOKEN_PERMISSIONS_TYPEHASH, permitted.token, permitted.amount));
    }

    function _transfer(
        PermitTransferFrom calldata permit,
        SignatureTransferDetails calldata transferDetails,
        address owner,
        bytes32 structHash,
        bytes calldata signature
    ) private {
        uint256 requested = transferDetails.requestedAmount;
        if (block.timestamp > permit.deadline) revert SignatureExpired(permit.deadline);
        if (requested > permit.permitted.amount) revert InvalidAmount(permit.permitted.amount);
        _useUnorderedNonce(owner, permit.nonce);
        bytes32 digest = keccak256(abi.encodePacked(hex"1901", DOMAIN_SEPARATOR(), structHash));
        _verify(signature, digest, owner);
        _safeTransferFrom(permit.permitted.token, owner, transferDetails.to, requested);
    }

    function _useUnorderedNonce(address owner, uint256 nonce) private {
        uint256 wordPos = nonce >> 8;
        uint256 bit = uint256(1) << (nonce & 0xff);
        uint256 flipped = nonceBitmap[owner][wordPos] ^= bit;
        if (flipped & bit == 0) revert InvalidNonce();
    }

    function _verify(bytes calldata signature, bytes32 digest, address claimedSigner) private view {
        if (claimedSigner.code.length == 0) {
            bytes32 r;
            bytes32 s;
            uint8 v;
            if (signature.length == 65) {
                (r, s) = abi.decode(signature, (bytes32, bytes32));
                v = uint8(signature[64]);
            } else if (signature.length == 64) {
                bytes32 vs;
                (r, vs) = abi.decode(signature, (bytes32, bytes32));
                s = vs & bytes32(0x7fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff);
                v = uint8(uint256(vs >> 255)) + 27;
            } else {
                revert InvalidSignatureLength();
            }
            address signer = ecrecover(digest, v, r, s);
            if (signer == address(0)) revert InvalidSignature();
            if (signer != claimedSigner) revert InvalidSigner();
        } else {
            bytes4 magic = IPermit2ERC1271(claimedSigner).isValidSignature(digest, signature);
            if (magic != IPermit2ERC1271.isValidSignature.selector) revert InvalidContractSignature();
        }
    }

    /// @dev transferFrom that accepts tokens returning true or nothing, and fails on anything else.
    function _safeTransferFrom(address token, address from, address to, uint256 amount) private {
        if (token.code.length == 0) revert TransferFailed();
        (bool ok, bytes memory result) =
            token.call(abi.encodeWithSelector(IPermit2Token.transferFrom.selector, from, to, amount));
        if (!ok) {
            assembly {
                revert(add(result, 0x20), mload(result))
            }
        }
        if (result.length != 0 && (result.length < 32 || !abi.decode(result, (bool)))) revert TransferFailed();
    }
}
