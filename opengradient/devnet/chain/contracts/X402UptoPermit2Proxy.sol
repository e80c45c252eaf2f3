// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @dev The Permit2 entry point the proxy calls (see Permit2.sol).
interface IUptoPermit2 {
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

    function permitWitnessTransferFrom(
        PermitTransferFrom calldata permit,
        SignatureTransferDetails calldata transferDetails,
        address owner,
        bytes32 witness,
        string calldata witnessTypeString,
        bytes calldata signature
    ) external;
}

/// @dev EIP-2612 permit, for the gas-sponsoring path.
interface IUptoERC2612 {
    function permit(address owner, address spender, uint256 value, uint256 deadline, uint8 v, bytes32 r, bytes32 s)
        external;
}

/// @title X402UptoPermit2Proxy: settles x402 `upto` payments through Permit2.
/// @notice The devnet's implementation of the proxy x402's `upto` facilitators call at
///   0x4020A4f3b7b90ccA423B9fabCc0CE57C6C240002 (ABI as in the `x402` package's
///   X402_UPTO_PERMIT2_PROXY_ABI). A payer signs one Permit2 `PermitWitnessTransferFrom` with this
///   proxy as spender, a cap as the permitted amount, and the witness
///   `Witness(address to,address facilitator,uint256 validAfter)`. The facilitator named in the
///   witness — and only it — later calls `settle` with the actual amount (at most the cap); the
///   tokens go to `witness.to`, so neither the facilitator nor anyone else can redirect them, and
///   the Permit2 nonce makes every signature settle at most once.
/// @dev No constructor, no immutables, no storage besides a reentrancy flag: the runtime code alone
///   is placed at genesis. Revert names follow x402's error mapping (`AmountExceedsPermitted`,
///   `UnauthorizedFacilitator`, `PaymentTooEarly`, `InvalidOwner`, `InvalidDestination`,
///   `Permit2612AmountMismatch`); Permit2's own errors (`InvalidNonce`, `SignatureExpired`, …)
///   bubble up unchanged.
contract X402UptoPermit2Proxy {
    struct Witness {
        address to;
        address facilitator;
        uint256 validAfter;
    }

    struct EIP2612Permit {
        uint256 value;
        uint256 deadline;
        bytes32 r;
        bytes32 s;
        uint8 v;
    }

    /// @notice The canonical Permit2.
    address public constant PERMIT2 = 0x000000000022D473030F116dDEE9F6B43aC78BA3;
    /// @notice What the witness type string completes in Permit2's `PermitWitnessTransferFrom`.
    string public constant WITNESS_TYPE_STRING =
        "Witness witness)TokenPermissions(address token,uint256 amount)Witness(address to,address facilitator,uint256 validAfter)";
    bytes32 public constant WITNESS_TYPEHASH = keccak256("Witness(address to,address facilitator,uint256 validAfter)");

    uint256 private _entered;

    /// @notice A settlement went through: `amount` of `token` from `owner` to `to`, by `facilitator`.
    event Settled(
        address indexed owner, address indexed to, address indexed facilitator, address token, uint256 amount,
        uint256 nonce
    );

    error AmountExceedsPermitted();
    error UnauthorizedFacilitator();
    error PaymentTooEarly();
    error InvalidOwner();
    error InvalidDestination();
    error Permit2612AmountMismatch();
    error Reentrancy();

    modifier nonReentrant() {
        if (_entered != 0) revert Reentrancy();
        _entered = 1;
        _;
        _entered = 0;
    }

    /// @notice Settle `amount` (≤ the signed cap) of `owner`'s signed permit to `witness.to`.
    function settle(
        IUptoPermit2.PermitTransferFrom calldata permit,
        uint256 amount,
        address owner,
        Witness calldata witness,
        bytes calldata signature
    ) external nonReentrant {
        _settle(permit, amount, owner, witness, signature);
    }

    /// @notice `settle`, after setting the Permit2 allowance with the owner's EIP-2612 permit (a
    ///   permit already used, e.g. by a front-runner, is tolerated: the settlement then relies on
    ///   the allowance it set).
    function settleWithPermit(
        EIP2612Permit calldata permit2612,
        IUptoPermit2.PermitTransferFrom calldata permit,
        uint256 amount,
        address owner,
        Witness calldata witness,
        bytes calldata signature
    ) external nonReentrant {
        if (permit2612.value < permit.permitted.amount) revert Permit2612AmountMismatch();
        try IUptoERC2612(permit.permitted.token).permit(
            owner, PERMIT2, permit2612.value, permit2612.deadline, permit2612.v, permit2612.r, permit2612.s
        ) {} catch {}
        _settle(permit, amount, owner, witness, signature);
    }

    function _settle(
        IUptoPermit2.PermitTransferFrom calldata permit,
        uint256 amount,
        address owner,
        Witness calldata witness,
        bytes calldata signature
    ) private {
        if (owner == address(0)) revert InvalidOwner();
        if (witness.to == address(0)) revert InvalidDestination();
        if (witness.facilitator != msg.sender) revert UnauthorizedFacilitator();
        if (block.timestamp < witness.validAfter) revert PaymentTooEarly();
        if (amount > permit.permitted.amount) revert AmountExceedsPermitted();
        bytes32 witnessHash = keccak256(abi.encode(WITNESS_TYPEHASH, witness.to, witness.facilitator, witness.validAfter));
        IUptoPermit2(PERMIT2).permitWitnessTransferFrom(
            permit,
            IUptoPermit2.SignatureTransferDetails({to: witness.to, requestedAmount: amount}),
            owner,
            witnessHash,
            WITNESS_TYPE_STRING,
            signature
        );
        emit Settled(owner, witness.to, msg.sender, permit.permitted.token, amount, permit.nonce);
    }
}
