// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {Number} from "./InferenceTypes.sol";

/// @dev Where the devnet keeps its price-history oracle (runtime code placed at start).
address constant PRICE_HISTORY_ORACLE = 0x000000000000000000000000000000000000C4d1;

/// @dev Candle value kinds, as the SDK's CandleType: HIGH 0, LOW 1, OPEN 2, CLOSE 3, VOLUME 4.
uint8 constant MAX_CANDLE_TYPE = 4;

/// @notice What a workflow reads before each run: the latest candles of one market.
interface IPriceHistoryOracle {
    /// @notice The latest `totalCandles` candles of `base`/`quote` at `durationMins` minutes,
    /// flattened row-major: for each candle (oldest first when `order` is 0 ASCENDING, newest
    /// first when 1 DESCENDING), one number per entry of `candleTypes`.
    function getCandles(
        string calldata base,
        string calldata quote,
        uint32 totalCandles,
        uint32 durationMins,
        uint8 order,
        uint8[] calldata candleTypes
    ) external view returns (Number[] memory values);
}

/// @title PriceHistoryOracle
/// @notice The devnet's on-chain price history: OHLCV candles per market and candle duration,
/// appended by an operator (the devnet feeds reproducible synthetic candles as time passes).
/// @dev Installed by placing runtime code, so there is no constructor: the devnet writes
/// `operator` (slot 0) directly. Prices are fixed-point with per-series decimals; each candle is
/// packed in one storage word.
contract PriceHistoryOracle is IPriceHistoryOracle {
    /// @notice Candles appended to one series, which is created by its first batch. Each candle
    /// is one word: open | high << 48 | low << 96 | close << 144 | volume << 192, prices scaled by
    /// 10**priceDecimals and the volume by 10**volumeDecimals. `lastCloseTime` is when the last
    /// candle of the batch closed.
    struct CandleBatch {
        string base;
        string quote;
        uint32 durationMins;
        uint8 priceDecimals;
        uint8 volumeDecimals;
        uint64 lastCloseTime;
        uint256[] candles;
    }

    struct Series {
        bool exists;
        uint8 priceDecimals;
        uint8 volumeDecimals;
        uint64 lastCloseTime;
        uint256[] candles;
    }

    /// @notice The only account that may add candles.
    address public operator;

    mapping(bytes32 => Series) private _series;
    bytes32[] private _keys;

    event SeriesAdded(bytes32 indexed key, string base, string quote, uint32 durationMins);
    event CandlesAdded(bytes32 indexed key, uint256 count, uint64 lastCloseTime);

    /// @notice The key of a series: markets are matched case-insensitively.
    function seriesKey(string memory base, string memory quote, uint32 durationMins) public pure returns (bytes32) {
        return keccak256(abi.encode(_upper(base), _upper(quote), durationMins));
    }

    function pushCandles(CandleBatch[] calldata batches) external {
        require(msg.sender == operator, "oracle: caller is not the operator");
        for (uint256 i = 0; i < batches.length; i++) {
            CandleBatch calldata batch = batches[i];
            require(batch.durationMins > 0, "oracle: duration must be positive");
            bytes32 key = seriesKey(batch.base, batch.quote, batch.durationMins);
            Series storage s = _series[key];
            if (!s.exists) {
                s.exists = true;
                s.priceDecimals = batch.priceDecimals;
                s.volumeDecimals = batch.volumeDecimals;
                _keys.push(key);
                emit SeriesAdded(key, _upper(batch.base), _upper(batch.quote), batch.durationMins);
            }
            uint256[] calldata candles = batch.candles;
            uint256[] storage stored = s.candles;
            uint256 length = stored.length;
            // Append in one pass: the words go after the current end, the length is written once.
            assembly ("memory-safe") {
                mstore(0x00, stored.slot)
                let slot := add(keccak256(0x00, 0x20), length)
                for { let j := 0 } lt(j, candles.length) { j := add(j, 1) } {
                    sstore(add(slot, j), calldataload(add(candles.offset, mul(j, 0x20))))
                }
                sstore(stored.slot, add(length, candles.length))
            }
            s.lastCloseTime = batch.lastCloseTime;
            emit CandlesAdded(key, candles.length, batch.lastCloseTime);
        }
    }

    /// @notice Keys of every series, in the order they were added.
    function seriesKeys() external view returns (bytes32[] memory) {
        return _keys;
    }

    /// @notice How many candles a series holds, when its last candle closed, and its decimals.
    function seriesInfo(string calldata base, string calldata quote, uint32 durationMins)
        external
        view
        returns (uint256 count, uint64 lastCloseTime, uint8 priceDecimals, uint8 volumeDecimals)
    {
        Series storage s = _series[seriesKey(base, quote, durationMins)];
        return (s.candles.length, s.lastCloseTime, s.priceDecimals, s.volumeDecimals);
    }

    function getCandles(
        string calldata base,
        string calldata quote,
        uint32 totalCandles,
        uint32 durationMins,
        uint8 order,
        uint8[] calldata candleTypes
    ) external view override returns (Number[] memory) {
        require(totalCandles > 0, "oracle: total_candles must be positive");
        require(candleTypes.length > 0, "oracle: candle_types is empty");
        require(order <= 1, "oracle: order must be 0 (ASCENDING) or 1 (DESCENDING)");
        for (uint256 j = 0; j < candleTypes.length; j++) {
            require(
                candleTypes[j] <= MAX_CANDLE_TYPE,
                "oracle: unknown candle type (HIGH 0, LOW 1, OPEN 2, CLOSE 3, VOLUME 4)"
            );
        }
        Series storage s = _series[seriesKey(base, quote, durationMins)];
        if (!s.exists) {
            revert(string.concat("oracle: no price history for ", base, "/", quote, " at ",
                _toString(durationMins), " minutes"));
        }
        uint256 available = s.candles.length;
        if (totalCandles > available) {
            revert(string.concat("oracle: ", base, "/", quote, " at ", _toString(durationMins),
                " minutes has ", _toString(available), " candles, asked for ", _toString(totalCandles)));
        }
        uint256 width = candleTypes.length;
        uint256 priceDecimals = s.priceDecimals;
        uint256 volumeDecimals = s.volumeDecimals;
        uint256[] storage candles = s.candles;
        // Writes the ABI encoding of the returned Number[] directly: the offset 0x20, the length,
        // then (value, decimals) per number. Candle types were validated above.
        assembly ("memory-safe") {
            let out := mload(0x40)
            mstore(out, 0x20)
            mstore(add(out, 0x20), mul(totalCandles, width))
            mstore(0x00, candles.slot)
            let data := keccak256(0x00, 0x20)
            let first := sub(available, totalCandles)
            let p := add(out, 0x40)
            for { let i := 0 } lt(i, totalCandles) { i := add(i, 1) } {
                let index := add(first, i)
                if order { index := sub(sub(available, 1), i) }
                let word := sload(add(data, index))
                for { let j := 0 } lt(j, width) { j := add(j, 1) } {
                    let kind := calldataload(add(candleTypes.offset, mul(j, 0x20)))
                    // bit offset of HIGH 0, LOW 1, OPEN 2, CLOSE 3, VOLUME 4 in the packed word
                    let shift := mul(8, byte(kind, 0x060c001218000000000000000000000000000000000000000000000000000000))
                    mstore(p, and(shr(shift, word), 0xffffffffffff))
                    let decimals := priceDecimals
                    if eq(kind, 4) { decimals := volumeDecimals }
                    mstore(add(p, 0x20), decimals)
                    p := add(p, 0x40)
                }
            }
            return(out, sub(p, out))
        }
    }

    function _upper(string memory text) private pure returns (string memory) {
        bytes memory b = bytes(text);
        bytes memory out = new bytes(b.length);
        for (uint256 i = 0; i < b.length; i++) {
            bytes1 c = b[i];
            out[i] = (c >= 0x61 && c <= 0x7a) ? bytes1(uint8(c) - 32) : c;
        }
        return string(out);
    }

    function _toString(uint256 value) private pure returns (string memory) {
        if (value == 0) {
            return "0";
        }
        uint256 digits;
        for (uint256 v = value; v != 0; v /= 10) {
            digits++;
        }
        bytes memory out = new bytes(digits);
        for (; value != 0; value /= 10) {
            out[--digits] = bytes1(uint8(48 + (value % 10)));
        }
        return string(out);
    }
}
