// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @title WorkflowScheduler
/// @notice Registers workflows to be run periodically: the chain's scheduler calls `run()` on each
/// registered contract every `frequency` seconds until `endTime` (PROTOCOL.md section 5).
/// @dev Installed at a fixed address by placing runtime code: no constructor, zeroed storage. On
/// the devnet the calls are made by a scheduler loop in the node, from a development account.
contract WorkflowScheduler {
    struct Task {
        address contractAddress;
        address owner;
        uint64 endTime;
        uint64 frequency;
        uint64 registeredAt;
        bool cancelled;
    }

    Task[] private _tasks;

    event TaskRegistered(
        uint256 indexed taskId,
        address indexed contractAddress,
        address indexed owner,
        uint256 endTime,
        uint256 frequency
    );
    event TaskCancelled(uint256 indexed taskId);

    /// @notice Run `contractAddress.run()` every `frequency` seconds until `endTime` (Unix time).
    function registerTask(address contractAddress, uint256 endTime, uint256 frequency)
        external
        returns (uint256 taskId)
    {
        require(contractAddress.code.length != 0, "scheduler: no contract at this address");
        require(endTime > block.timestamp, "scheduler: end time is in the past");
        require(endTime <= type(uint64).max, "scheduler: end time is too far in the future");
        require(frequency != 0, "scheduler: frequency must be at least 1 second");
        require(frequency <= type(uint64).max, "scheduler: frequency is too large");
        taskId = _tasks.length;
        _tasks.push(
            Task({
                contractAddress: contractAddress,
                owner: msg.sender,
                endTime: uint64(endTime),
                frequency: uint64(frequency),
                registeredAt: uint64(block.timestamp),
                cancelled: false
            })
        );
        emit TaskRegistered(taskId, contractAddress, msg.sender, endTime, frequency);
    }

    /// @notice Stop a task; only the account that registered it may.
    function cancelTask(uint256 taskId) external {
        require(taskId < _tasks.length, "scheduler: unknown task");
        Task storage task = _tasks[taskId];
        require(task.owner == msg.sender, "scheduler: only the task's owner may cancel it");
        require(!task.cancelled, "scheduler: task already cancelled");
        task.cancelled = true;
        emit TaskCancelled(taskId);
    }

    function taskCount() external view returns (uint256) {
        return _tasks.length;
    }

    function getTask(uint256 taskId) external view returns (Task memory) {
        require(taskId < _tasks.length, "scheduler: unknown task");
        return _tasks[taskId];
    }

    /// @notice Up to `count` tasks from `start` on.
    function getTasks(uint256 start, uint256 count) external view returns (Task[] memory tasks) {
        uint256 n = _tasks.length;
        uint256 end = start >= n ? start : (count > n - start ? n : start + count);
        tasks = new Task[](end - start);
        for (uint256 i = start; i < end; i++) {
            tasks[i - start] = _tasks[i];
        }
    }
}
