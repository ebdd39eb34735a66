// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

/// @title FalseReturnToken
/// @notice An ERC20 that signals failure by returning false instead of reverting (insufficient balance
/// or allowance), and that can be switched to fail every transfer that way. Callers that ignore the
/// return value would believe a failed transfer succeeded.
contract FalseReturnToken {
    string public constant name = "False Return Token";
    string public constant symbol = "FRT";
    uint8 public constant decimals = 18;

    uint256 public totalSupply;
    bool public failAll;
    mapping(address account => uint256) public balanceOf;
    mapping(address owner => mapping(address spender => uint256)) public allowance;

    event Transfer(address indexed from, address indexed to, uint256 value);
    event Approval(address indexed owner, address indexed spender, uint256 value);

    /// @notice Mint `amount` to `to` (no access control).
    function mint(address to, uint256 amount) external {
        totalSupply += amount;
        balanceOf[to] += amount;
        emit Transfer(address(0), to, amount);
    }

    /// @notice When set, every transfer returns false and moves nothing.
    function setFailAll(bool fail) external {
        failAll = fail;
    }

    function approve(address spender, uint256 amount) external returns (bool) {
        allowance[msg.sender][spender] = amount;
        emit Approval(msg.sender, spender, amount);
        return true;
    }

    function transfer(address to, uint256 amount) external returns (bool) {
        return _transfer(msg.sender, to, amount);
    }

    function transferFrom(address from, address to, uint256 amount) external returns (bool) {
        uint256 allowed = allowance[from][msg.sender];
        if (failAll || allowed < amount) return false;
        if (!_transfer(from, to, amount)) return false;
        allowance[from][msg.sender] = allowed - amount;
        return true;
    }

    function _transfer(address from, address to, uint256 amount) private returns (bool) {
        if (failAll || balanceOf[from] < amount) return false;
        balanceOf[from] -= amount;
        balanceOf[to] += amount;
        emit Transfer(from, to, amount);
        return true;
    }
}
