// Behaviour every page shares, without inline script (the Content-Security-Policy forbids it).
(function () {
  // <form data-confirm="Question?">: ask before submitting.
  document.addEventListener("submit", function (event) {
    const question = event.target.getAttribute && event.target.getAttribute("data-confirm");
    if (question && !window.confirm(question)) event.preventDefault();
  });
})();
